"""`mlkd` sub-commands of the ROS side: record, replay, bag-from-frames (registered in mlkd_model/cli.py)."""
