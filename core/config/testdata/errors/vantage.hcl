# A vantage is a short printable name: a label value on every series.
vantage = "" # ERROR: Invalid vantage
