"""Operator console: a web page served by the ground station (mlkd_ros/operator_console.py).

ros_side.py is the ROS node (subscriptions, frame/box pairing, service calls), web.py the aiohttp
server (pages, WebSocket, per-client newest-frame-only sending), security.py the token / Origin / Host
rules, protocol.py the messages a browser may send. The page itself is in static/ (no CDN).
"""
