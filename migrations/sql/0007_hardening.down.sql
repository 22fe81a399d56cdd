DROP TABLE IF EXISTS pak_short_tokens;
