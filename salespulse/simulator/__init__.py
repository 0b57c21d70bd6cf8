"""Event simulator: ``model`` generates the business, ``output`` formats and lands CSV files, ``run`` drives
history and live runs."""
