"""Spark jobs: the only package that imports pyspark.

``session.py`` builds the one SparkSession, ``schemas.py`` derives Spark schemas from the canonical ones in
``salespulse.schema``, ``transforms/`` holds the pure rules shared by batch and stream, ``io.py`` the only code that
touches paths; ``backfill.py``, ``stream.py``, ``compact.py`` and ``forecast.py`` are the jobs.
"""
