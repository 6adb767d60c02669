"""tinyq: quantize Keras/TFLite models to int8 and deploy them as bit-exact C on Cortex-M."""

__version__ = "0.1.0"
