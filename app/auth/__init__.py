"""Who may call what: SAS client certificates, OAuth 2 bearer tokens, people's roles."""
