"""Forecasting model (TensorFlow/Keras): features shared by training and serving (``features.py``), the networks,
training and its baselines and metrics, the model card, the registry of versions, and Spark-side scoring."""
