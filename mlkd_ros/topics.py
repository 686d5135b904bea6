"""The ground station's ROS interface: every topic and service the nodes share, in one place (docs/ros.md).

Names are relative, so a namespace or a remap moves them all. No ROS import here: the CLI, the bag
tools and the nodes all take their names from this module.
"""

IMAGE_TOPIC = "camera/image"  # sensor_msgs/Image, stamped when the frame reached the ground station
COMPRESSED_TOPIC = IMAGE_TOPIC + "/compressed"  # image_transport's convention: JPEG CompressedImage
CAMERA_INFO_TOPIC = "camera/camera_info"  # sensor_msgs/CameraInfo of the published images
GT_TOPIC = "ground_truth/box"  # geometry_msgs/PolygonStamped, replays with ground truth
INIT_TOPIC = "tracker/init"  # PolygonStamped: the target box on the frame its header stamp names
BOX_TOPIC = "tracker/box"  # PolygonStamped: the tracked box (empty polygon: no target)
# DiagnosticArray, header = the image's header, one status "tracker": level OK / WARN / ERROR for the states
# tracking / uncertain / lost; values state, confidence, score, x, y, w, h (box + score + state in one message)
STATUS_TOPIC = "tracker/status"
CLE_TOPIC = "tracker/cle"  # PointStamped: box centre minus ground-truth centre (replays with ground truth)
OFFSET_TOPIC = "tracker/offset"  # PointStamped: box centre minus image centre (live, no ground truth)
RESET_SERVICE = "tracker/reset"  # std_srvs/Trigger: drop the target
FOLLOW_ENABLE_SERVICE = "follow/enable"  # std_srvs/SetBool: the follow controller's arm switch
CMD_VEL_TOPIC = "cmd_vel"  # geometry_msgs/Twist from the follow controller to the bridge


def compressed_topic(node) -> str:
    """The node's JPEG topic: its image topic as resolved (namespace, remaps) + "/compressed", as image_transport
    names it, so a remap of camera/image moves the compressed stream with it."""
    return node.resolve_topic_name(IMAGE_TOPIC) + "/compressed"
