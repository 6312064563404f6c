"""Readers for third-party weight formats (TF GraphDef, TFLite flatbuffer, Caffe) -- no foreign runtime."""
