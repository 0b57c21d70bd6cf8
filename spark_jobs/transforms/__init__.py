"""Pure DataFrame -> DataFrame transformations shared by the backfill and the stream: parse (source columns
to canonical text), clean (types, categories, reasons), dedupe, aggregate. No I/O, no session, no clock."""
