vantage = "tab\there" # ERROR: Invalid vantage
