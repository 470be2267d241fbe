"""Operations shared by the admin, the management commands and the CLI."""
