"""Spark jobs: the only package that imports pyspark.

``session.py`` builds the one SparkSession, ``schemas.py`` derives Spark schemas from the canonical ones in
``salespulse.schema``. The shared transformations, backfill and stream arrive with the batch and streaming
issues.
"""
