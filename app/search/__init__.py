"""Search: parameter registry, query parsing, SQL building, includes and paging."""
