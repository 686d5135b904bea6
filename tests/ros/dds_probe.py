"""Two-host DDS probe: the ground station in one network namespace, an attacker in another, a veth between.

    unshare -rn sh -c 'ip link set lo up && exec python tests/ros/dds_probe.py station --profile localhost ...'

`station` (run inside a private user + network namespace, "host A", 10.77.0.1) makes "host B" (its own
network namespace and a private /dev/shm, as another machine has, 10.77.0.2) joined by a veth pair,
starts the tracker and follow controller from launch/ground_station.launch.xml with the launch file's own
DDS settings (or the given profile), and streams camera frames to them from a witness node on A. For
each attack it runs `attack` on B with Fast DDS defaults (multicast discovery, or ROS_STATIC_PEERS=A):
the attacker lists nodes, subscribes to the video, publishes tracker/init and cmd_vel, calls follow/enable
and tracker/set_parameters. The witness counts what reached A (cmd_vel, tracker boxes, the parameter),
then checks that the same things work from A itself. Prints `RESULT <json>`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
A_IP, B_IP = "10.77.0.1", "10.77.0.2"
PARAM, PARAM_DEFAULT, PARAM_ATTACK = "lost_score", 0.2, 0.9
GS_NODES = ("olympe_bridge", "tracker", "follow_controller")


def square_init(node):
    """A tracker/init box stamped now (no frame with that stamp: the tracker inits on its newest frame)."""
    from geometry_msgs.msg import Point32, PolygonStamped

    init = PolygonStamped()
    init.header.stamp = node.get_clock().now().to_msg()
    corners = ((100.0, 100.0), (160.0, 100.0), (160.0, 160.0), (100.0, 160.0))
    init.polygon.points = [Point32(x=x, y=y) for x, y in corners]
    return init


def set_param_request(value: float):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    v = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    return SetParameters.Request(parameters=[Parameter(name=PARAM, value=v)])


def sh(cmd: str) -> None:
    subprocess.run(["sh", "-c", cmd], check=True)


def make_host_b(work: Path) -> subprocess.Popen:
    """A process in a new network + mount namespace (private /dev/shm), wired to us by a veth pair."""
    holder = subprocess.Popen(
        ["unshare", "-nm", "--propagation", "private", "sh", "-c",
         "mount -t tmpfs tmpfs /dev/shm && ip link set lo up && echo ready && exec sleep 3600"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "ready"
    pid = holder.pid
    sh(f"ip link add mlkd_a type veth peer name mlkd_b netns {pid}")
    sh(f"ip addr add {A_IP}/24 dev mlkd_a && ip link set mlkd_a up && ip route add 224.0.0.0/4 dev mlkd_a")
    inner = f"ip addr add {B_IP}/24 dev mlkd_b && ip link set mlkd_b up && ip route add 224.0.0.0/4 dev mlkd_b"
    sh(f"nsenter -t {pid} -n -m sh -c {shlex.quote(inner)}")
    sh(f"nsenter -t {pid} -n ping -c 1 -W 2 {A_IP} >/dev/null 2>&1 || true")
    return holder


def attack_env(domain_id: int, static_peers: bool) -> dict[str, str]:
    """An attacker with Fast DDS defaults, on the ground station's domain (assume it is known)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTDDS_", "FASTRTPS_", "ROS_"))}
    env.update(ROS_DOMAIN_ID=str(domain_id), RMW_IMPLEMENTATION="rmw_fastrtps_cpp", PYTHONUNBUFFERED="1")
    if static_peers:
        env["ROS_STATIC_PEERS"] = A_IP
    return env


# ---- the attacker (host B)
def attack(seconds: float) -> dict:
    import rclpy
    from geometry_msgs.msg import PolygonStamped, Twist
    from rcl_interfaces.srv import SetParameters
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_srvs.srv import SetBool

    rclpy.init()
    node = rclpy.create_node("intruder")
    frames: list[int] = []
    node.create_subscription(Image, "camera/image", lambda m: frames.append(1), qos_profile_sensor_data)
    node.create_subscription(Image, "camera/image", lambda m: frames.append(1), 10)
    init_pub = node.create_publisher(PolygonStamped, "tracker/init", 10)
    cmd_pub = node.create_publisher(Twist, "cmd_vel", 10)
    enable = node.create_client(SetBool, "follow/enable")
    set_params = node.create_client(SetParameters, "tracker/set_parameters")
    result = {"nodes": [], "frames": 0, "enable_answered": False, "set_parameters_answered": False}
    pending = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
        names = {n for n, _ns in node.get_node_names_and_namespaces() if n != "intruder"}
        result["nodes"] = sorted(set(result["nodes"]) | names)
        init_pub.publish(square_init(node))
        cmd = Twist()
        cmd.linear.x, cmd.angular.z = 1.0, 0.5
        cmd_pub.publish(cmd)
        if enable.service_is_ready() and "enable" not in pending:
            pending["enable"] = enable.call_async(SetBool.Request(data=True))
        if set_params.service_is_ready() and "params" not in pending:
            pending["params"] = set_params.call_async(set_param_request(PARAM_ATTACK))
        result["enable_answered"] = "enable" in pending and pending["enable"].done()
        result["set_parameters_answered"] = "params" in pending and pending["params"].done()
    result["frames"] = len(frames)
    node.destroy_node()
    rclpy.shutdown()
    return result


# ---- the ground station side (host A)
def station(args: argparse.Namespace) -> dict:
    from mlkd_ros import launch_xml

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    launch_args = {"domain_id": str(args.domain_id), "drone_ip": ""}  # the bridge: no drone, no video
    if args.profile:
        launch_args["fastdds_profile"] = str(ROOT / "launch" / f"fastdds_{args.profile}.xml")
    desc = launch_xml.parse_launch(ROOT / "launch" / "ground_station.launch.xml", launch_args)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTDDS_", "FASTRTPS_", "ROS_"))}
    env.update(desc.env, RMW_IMPLEMENTATION="rmw_fastrtps_cpp", PYTHONUNBUFFERED="1")
    if args.discovery_range:
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = args.discovery_range
    os.environ.clear()
    os.environ.update(env)  # the witness below is a ground-station participant too
    holder = make_host_b(work)
    procs = launch_xml.start(desc, list(GS_NODES), env=env, log_dir=work)
    try:
        return _observe(args, holder, procs, work)
    finally:
        launch_xml.stop(procs, timeout=3.0)
        holder.kill()


def _observe(args, holder, procs, work: Path) -> dict:
    import cv2
    import rclpy
    from geometry_msgs.msg import PolygonStamped, Twist
    from rcl_interfaces.srv import GetParameters, SetParameters
    from std_srvs.srv import SetBool

    from mlkd_ros.camera_frame import CAMERA_FRAME
    from mlkd_ros.dds import CONTROL_QOS, IMAGE_QOS
    from mlkd_ros.image_conversion import numpy_to_image

    rclpy.init()
    node = rclpy.create_node("witness")
    img_dir = Path(args.frames)
    frames = [numpy_to_image(cv2.imread(str(p))) for p in sorted(img_dir.glob("*.jpg"))[:60]]
    cam = node.create_publisher(type(frames[0]), "camera/image", IMAGE_QOS)
    init_pub = node.create_publisher(PolygonStamped, "tracker/init", CONTROL_QOS)
    seen = {"cmd_vel": [], "box": []}
    node.create_subscription(Twist, "cmd_vel", lambda m: seen["cmd_vel"].append(m), CONTROL_QOS)
    node.create_subscription(PolygonStamped, "tracker/box", lambda m: seen["box"].append(m), CONTROL_QOS)
    state = {"i": 0}

    def tick() -> None:
        msg = frames[state["i"] % len(frames)]
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.header.frame_id = CAMERA_FRAME
        cam.publish(msg)
        state["i"] += 1

    node.create_timer(1 / 15, tick)

    def spin(seconds: float, until=None) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if until is not None and until():
                return True
            rclpy.spin_once(node, timeout_sec=0.05)
        return until() if until is not None else True

    def call(srv, name, request, timeout=20.0):
        client = node.create_client(srv, name)
        if not spin(timeout, client.service_is_ready):
            return None
        fut = client.call_async(request)
        spin(timeout, fut.done)
        return fut.result()

    def param() -> float | None:
        res = call(GetParameters, "tracker/get_parameters", GetParameters.Request(names=[PARAM]))
        return None if res is None else res.values[0].double_value

    # The nodes are up (their services answer here) before anyone attacks.
    ready = {"param_before": param()}
    spin(20.0, lambda: "olympe_bridge" in node.get_node_names())
    spin(2.0)
    ready["bridge_services"] = sorted(
        name for name, _t in node.get_service_names_and_types_by_node("olympe_bridge", "/") if "parameter" not in name
    )
    ready["cmd_vel_subscribers"] = node.count_subscribers("cmd_vel") - 1  # minus the witness
    running = {n: procs[n].poll() is None for n in procs}
    if procs["follow_controller"].poll() is None:
        ready["enable_ready"] = call(SetBool, "follow/enable", SetBool.Request(data=False)) is not None
    attacks = {}
    for variant in args.attack:
        n_cmd, n_box = len(seen["cmd_vel"]), len(seen["box"])
        # The attacker runs as a child while we keep streaming: spin in between its polls.
        log = work / f"{variant}.log"
        attacker = _spawn_attack(holder, args.domain_id, variant == "static_peers", args.seconds, log)
        while attacker.poll() is None:
            spin(0.2)
        out = attacker.stdout.read()
        line = next((ln for ln in out.splitlines() if ln.startswith("ATTACK ")), None)
        if line is None:
            raise RuntimeError(f"attacker {variant} failed: {(work / f'{variant}.log').read_text()[-2000:]}")
        spin(1.0)
        attacks[variant] = {
            **json.loads(line[len("ATTACK ") :]),
            "cmd_vel_reached": len(seen["cmd_vel"]) - n_cmd,
            "boxes_after": len(seen["box"]) - n_box,
            "param_after": param(),
        }
    # Same host: the witness inits the tracker, enables following and sets the parameter.
    local = {"param_set": None, "boxes": 0, "nonzero_cmd_vel": 0}
    n_box = len(seen["box"])
    init_pub.publish(square_init(node))
    spin(20.0, lambda: len(seen["box"]) - n_box >= 5)
    local["boxes"] = len(seen["box"]) - n_box
    if procs["follow_controller"].poll() is None:
        n_cmd = len(seen["cmd_vel"])
        res = call(SetBool, "follow/enable", SetBool.Request(data=True))
        local["enable_ok"] = bool(res and res.success)
        spin(10.0, lambda: any(abs(m.angular.z) + abs(m.linear.x) > 0 for m in seen["cmd_vel"][n_cmd:]))
        local["nonzero_cmd_vel"] = sum(abs(m.angular.z) + abs(m.linear.x) > 0 for m in seen["cmd_vel"][n_cmd:])
        call(SetBool, "follow/enable", SetBool.Request(data=False))
    res = call(SetParameters, "tracker/set_parameters", set_param_request(0.3))
    local["param_set"] = bool(res and res.results[0].successful) and param() == 0.3
    node.destroy_node()
    rclpy.shutdown()
    return {"running": running, **ready, "attacks": attacks, "local": local}


def _spawn_attack(holder, domain_id: int, static_peers: bool, seconds: float, log: Path) -> subprocess.Popen:
    cmd = ["nsenter", "-t", str(holder.pid), "-n", "-m", sys.executable, str(Path(__file__).resolve()), "attack"]
    return subprocess.Popen(
        [*cmd, "--seconds", str(seconds)],
        env=attack_env(domain_id, static_peers),
        stdout=subprocess.PIPE,
        stderr=open(log, "w"),
        text=True,
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="role", required=True)
    a = sub.add_parser("attack")
    a.add_argument("--seconds", type=float, default=8.0)
    s = sub.add_parser("station")
    s.add_argument("--work", required=True)
    s.add_argument("--frames", required=True, help="folder of .jpg frames for the camera")
    s.add_argument("--domain-id", type=int, default=42)
    s.add_argument("--profile", default="", help="localhost | subnet (default: the launch file's own)")
    s.add_argument("--discovery-range", default="", help="override ROS_AUTOMATIC_DISCOVERY_RANGE on A")
    s.add_argument("--attack", nargs="+", default=["multicast", "static_peers"], choices=["multicast", "static_peers"])
    s.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    if args.role == "attack":
        print("ATTACK " + json.dumps(attack(args.seconds)), flush=True)
    else:
        print("RESULT " + json.dumps(station(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
