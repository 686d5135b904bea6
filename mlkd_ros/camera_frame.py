"""The coordinate frame named in the header of every image this package publishes or writes.

REP-103 gives camera images their own "optical" frame (z forward, x right, y down: the axes of pixel
coordinates), distinct from the camera body frame (x forward, y left, z up), and REP-105 / common
practice name it `<camera>_optical_frame`. The bridge (`frame_id` parameter, this default), bags made by
`mlkd bag-from-frames` and the test and benchmark publishers use it. Nothing reads it back: bags and
streams carrying any other frame_id (older bags say `camera`) play and track the same, and the tracker's
boxes carry the header of the image they were found in, so their frame is always that image's.
"""

CAMERA_FRAME = "camera_optical_frame"
