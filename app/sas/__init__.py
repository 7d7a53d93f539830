"""The SAS platform's interfaces: slot aggregation (INT_R01) and its shaping rules."""
