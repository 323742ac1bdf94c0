"""Reading uploaded tables (CSV in any common encoding, .xlsx) and checking that recipients' domains take mail."""
