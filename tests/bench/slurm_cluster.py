"""A real single-node Slurm for the tests: ``munged``, ``slurmctld`` and ``slurmd`` started
from Debian's slurm-wlm and munge packages with a generated ``slurm.conf`` in a temporary
folder (its own munge key and socket, free ports, proctrack/linuxproc, task/none, cons_tres),
and stopped by pid.

:func:`start_cluster` raises :class:`SlurmUnavailable` with the reason when Slurm cannot start
(not installed, not root, a daemon that dies); the fixture in ``conftest.py`` skips on it, or
fails under CI. Every client command of the tests (``sbatch``, ``squeue``, ``scancel``) finds
the cluster through ``SLURM_CONF`` in :attr:`SlurmCluster.env`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "srun")
SBIN = (Path("/usr/sbin"), Path("/usr/bin"), Path("/sbin"))
START_S = 45.0


class SlurmUnavailable(RuntimeError):
    """Slurm cannot be started here; the message says why."""


@dataclass
class SlurmCluster:
    """A running test cluster: its folder, ``slurm.conf``, environment and daemon processes."""

    folder: Path
    conf: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A Slurm client command against this cluster."""
        return subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, timeout=60, check=check
        )

    def log_tail(self, lines: int = 15) -> str:
        out = []
        for name in DAEMONS:
            path = self.folder / f"{name}.log"
            if path.is_file():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {name}.log\n" + "\n".join(tail))
        return "\n".join(out)


def _daemon(name: str) -> Path:
    for base in SBIN:
        if (base / name).is_file():
            return base / name
    found = shutil.which(name)
    if found is None:
        raise SlurmUnavailable(f"{name} is not installed (apt-get install slurm-wlm munge as root)")
    return Path(found)


def _free_ports(n: int) -> list[int]:
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return max(int(line.split()[1]) // 1024 - 512, 512)
    return 1024


def slurm_conf(folder: Path, ports: list[int], cpus: int) -> str:
    """The cluster's ``slurm.conf``: one node ``localhost``, one partition ``debug``."""
    return "\n".join(
        [
            "ClusterName=medimeta-test",
            "SlurmctldHost=localhost(127.0.0.1)",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"SlurmctldPort={ports[0]}",
            f"SlurmdPort={ports[1]}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={folder / 'munge.sock'}",
            f"StateSaveLocation={folder / 'state'}",
            f"SlurmdSpoolDir={folder / 'spool'}",
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
            f"SlurmdPidFile={folder / 'slurmd.pid'}",
            f"SlurmctldLogFile={folder / 'slurmctld.log'}",
            f"SlurmdLogFile={folder / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SchedulerType=sched/backfill",
            # the tests wait for jobs: schedule at once and kill a cancelled job quickly
            "SchedulerParameters=sched_min_interval=0",
            "KillWait=2",
            "MinJobAge=30",
            "SwitchType=switch/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "JobCompType=jobcomp/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SlurmdParameters=config_overrides",
            "MailProg=/bin/true",
            f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={_memory_mb()} "
            "State=UNKNOWN",
            "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def _spawn(cluster: SlurmCluster, name: str, args: list[str]) -> None:
    log = open(cluster.folder / f"{name}.out", "wb")  # noqa: SIM115 - the daemon's own
    cluster.processes[name] = subprocess.Popen(
        args, env=cluster.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()


def _wait(cluster: SlurmCluster, what: str, ready: object) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        for name, proc in cluster.processes.items():
            if proc.poll() is not None:
                out = (cluster.folder / f"{name}.out").read_text(errors="replace")[-1500:]
                raise SlurmUnavailable(f"{name} exited with {proc.returncode}: {out}")
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise SlurmUnavailable(f"{what} not ready after {START_S:.0f} s\n{cluster.log_tail()}")


def _node_idle(cluster: SlurmCluster) -> bool:
    got = cluster.run("sinfo", "-h", "-o", "%T", check=False)
    return got.returncode == 0 and got.stdout.strip() == "idle"


def start_cluster(base: Path | None = None) -> SlurmCluster:
    """Start munged, slurmctld and slurmd in a new folder; SlurmUnavailable when they cannot."""
    if os.geteuid() != 0:
        raise SlurmUnavailable("starting slurmd needs root")
    paths = {name: _daemon(name) for name in DAEMONS}
    for name in CLIENTS:
        if shutil.which(name) is None:
            raise SlurmUnavailable(f"{name} is not installed (apt-get install slurm-wlm)")
    # a short path: the munge socket's name must fit in 108 bytes
    folder = Path(tempfile.mkdtemp(prefix="mm-slurm-", dir=base))
    folder.chmod(0o755)  # munged wants its socket's folder open to every user
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, _free_ports(2), os.cpu_count() or 1))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = SlurmCluster(folder, conf, env)
    sock = folder / "munge.sock"
    try:
        _spawn(
            cluster,
            "munged",
            [
                str(paths["munged"]),
                "--foreground",
                f"--socket={sock}",
                f"--key-file={key}",
                f"--pid-file={folder / 'munged.pid'}",
                f"--seed-file={folder / 'munged.seed'}",
                f"--log-file={folder / 'munged.log'}",
            ],
        )
        _wait(cluster, "munged", sock.exists)
        _spawn(cluster, "slurmctld", [str(paths["slurmctld"]), "-D", "-f", str(conf)])
        _wait(cluster, "slurmctld", lambda: cluster.run("sinfo", check=False).returncode == 0)
        _spawn(cluster, "slurmd", [str(paths["slurmd"]), "-D", "-N", "localhost", "-f", str(conf)])
        _wait(cluster, "slurmd (node idle)", lambda: _node_idle(cluster))
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: SlurmCluster) -> None:
    """Cancel what is left of the jobs, then stop the daemons by pid (slurmd first)."""
    if "slurmctld" in cluster.processes and cluster.processes["slurmctld"].poll() is None:
        cluster.run("scancel", "--full", "--user", str(os.geteuid()), check=False)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            got = cluster.run("squeue", "-h", check=False)
            if got.returncode != 0 or not got.stdout.strip():
                break
            time.sleep(0.5)
    for name in reversed(DAEMONS):
        proc = cluster.processes.get(name)
        if proc is None or proc.poll() is not None:
            continue
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
    shutil.rmtree(cluster.folder, ignore_errors=True)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":  # by hand: python slurm_cluster.py; Ctrl-C or SIGTERM stops it
    signal.signal(signal.SIGTERM, _interrupt)
    c = start_cluster()
    print(f"export SLURM_CONF={c.conf}", flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        stop_cluster(c)
