"""twostream: two-stream human action recognition on HMDB51.

Pipeline: dataset + splits -> frame extraction -> optical flow -> training of each
stream -> evaluation -> fusion -> prediction on new videos.
"""

__version__ = "0.1.0"
