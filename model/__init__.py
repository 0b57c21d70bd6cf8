"""Forecasting model (TensorFlow/Keras): features shared by training and serving, training, registry and
Spark scoring. Empty until the forecasting issue; kept so the package layout is installable and stable."""
