DELETE FROM role_permissions WHERE permission = 'admin:audit';
DELETE FROM permissions WHERE name = 'admin:audit';
DROP TABLE audit_events;
