-- Usernames are unique regardless of case: `alice` and `Alice` are one
-- account. Names are kept as typed (what `me` shows); this index holds them
-- folded, and sign-in looks them up through it (lower(username) = ?).
-- Names are ASCII letters, digits, '.', '_' and '-', which lower() folds the
-- same way on SQLite and PostgreSQL.
--
-- A store that already holds names differing only by case cannot take the
-- index: tether checks for them before this runs and stops, naming them
-- (src/db/migrations.rs).
CREATE UNIQUE INDEX users_username_folded ON users (lower(username));
