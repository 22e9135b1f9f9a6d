"""Optical flow, the first stage of the temporal stream's input.

- :mod:`~twostream.flow.presets`: OpenCV's TV-L1 parameters, the presets and their frame scale;
- :mod:`~twostream.flow.methods`: the flow methods (TV-L1, DIS, Farneback), quantisation and
  the endpoint error;
- :mod:`~twostream.flow.tvl1_torch`: TV-L1 in PyTorch, batched on a device;
- :mod:`~twostream.flow.table`: the measured speed and error of each setting.

Nothing is imported here, so the table can be read without OpenCV and the methods without
PyTorch.
"""
