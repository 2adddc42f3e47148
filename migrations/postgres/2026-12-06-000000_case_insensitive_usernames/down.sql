DROP INDEX users_username_folded;
