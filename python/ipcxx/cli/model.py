"""One IPC object as the inspection commands see it, and its stable JSON form."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .names import name_text, shown
from .processes import user_name

# channel and lock: POSIX segments that ipcxx.Channel and ipcxx.RobustLock made (ipcxx_objects).
POSIX_KINDS = ("sem", "shm", "channel", "lock", "mq")
SYSV_KINDS = ("sysv-sem", "sysv-shm", "sysv-msg")
KINDS = POSIX_KINDS + SYSV_KINDS

# The keys of `ls --json` / `stat --json`, in output order; every object carries every key
# (null where it does not apply), so scripts never need to test for a key's presence.
JSON_KEYS = {
    "kind": "one of " + ", ".join(KINDS),
    "name": "POSIX name with its leading slash; null for System V. Bytes that are not UTF-8 "
    "appear as lone surrogates U+DC80+byte (Python: .encode('utf-8', 'surrogateescape'))",
    "name_hex": "the name's exact bytes in hex (bytes.fromhex); null for System V",
    "key": "System V key as the kernel stores it (signed 32-bit); null for POSIX",
    "key_hex": "the key as 0x%08x (unsigned); null for POSIX",
    "id": "System V identifier; null for POSIX",
    "uid": "owner's user id",
    "user": "owner's user name, null when the uid has no passwd entry",
    "creator_uid": "System V creator's user id; null for POSIX",
    "mode": "permission bits as an octal string, e.g. '0600'",
    "size": "segment size in bytes (shm, channel, lock, sysv-shm)",
    "value": "semaphore value (sem), null when it cannot be read",
    "semaphores": "number of semaphores in the set (sysv-sem)",
    "values": "the set's semaphore values in index order (sysv-sem), null when they cannot be "
    "read (key IPC_PRIVATE, no read permission)",
    "messages": "messages queued (sysv-msg; mq when the queue can be opened; channel: committed "
    "and not yet claimed by a consumer)",
    "queued_bytes": "bytes queued (mq: QSIZE of /dev/mqueue; sysv-msg: cbytes; channel: the "
    "payload bytes of its queued messages)",
    "attached": "number of attachments (sysv-shm nattch; channel: its live participants)",
    "creator_pid": "creating process (sysv-shm cpid)",
    "creator_alive": "whether creator_pid is a live process",
    "last_pid": "last process to operate (sysv-shm lpid)",
    "last_alive": "whether last_pid is a live process",
    "last_send_pid": "last sender (sysv-msg lspid)",
    "last_send_alive": "whether last_send_pid is a live process",
    "last_receive_pid": "last receiver (sysv-msg lrpid)",
    "last_receive_alive": "whether last_receive_pid is a live process",
    "notify_pid": "process registered for notification (mq NOTIFY_PID)",
    "notify_alive": "whether notify_pid is a live process",
    "changed_at": "Unix time the age counts from (System V ctime; POSIX older of mtime/ctime)",
    "age_seconds": "seconds since changed_at",
    "problem": "why a channel or lock shows no details (another layout version, a size that "
    "does not match, never initialised), or 'unreadable (...)' for a segment that could not be "
    "read (it may be a channel or lock); null otherwise",
    "channel": "for a channel, an object: capacity, max_message_size, used_bytes (ring bytes "
    "not free), queued_bytes, messages, writing/writing_dead (reservations not committed; by "
    "dead producers), reading/reading_dead (claimed, not consumed; by dead consumers), "
    "counts_complete, lost, abandoned, stream (no_producer_yet, open, draining, ended), "
    "declarations, producers_counted, participants (a list of {slot, pid, alive, producer}), "
    "producer_lock_pid, producer_lock_alive, consumer_lock_pid, consumer_lock_alive, version, "
    "head, rhead, tail; null otherwise",
    "lock": "for a lock, an object: locked, holder_tid, holder_pid, holder_alive (null when "
    "free or not visible), holder_visible (false: the holder is in another PID namespace), "
    "waiters, consistency (consistent, owner_died, not_recoverable), acquisitions, version; "
    "null otherwise",
}


@dataclass
class IpcObject:
    """One POSIX or System V object; fields that do not apply to its kind stay None."""

    kind: str
    changed_at: int
    uid: int
    mode: int
    name: bytes | None = None  # exactly as the kernel has it, with the leading slash
    key: int | None = None
    id: int | None = None
    creator_uid: int | None = None
    size: int | None = None
    value: int | None = None
    semaphores: int | None = None
    values: list[int] | None = None
    messages: int | None = None
    queued_bytes: int | None = None
    attached: int | None = None
    creator_pid: int | None = None
    last_pid: int | None = None
    last_send_pid: int | None = None
    last_receive_pid: int | None = None
    notify_pid: int | None = None
    problem: str | None = None
    channel: dict | None = None
    lock: dict | None = None

    @property
    def is_posix(self) -> bool:
        """True for POSIX objects (named), False for System V ones (key and id)."""
        return self.kind in POSIX_KINDS

    @property
    def key_hex(self) -> str | None:
        """The key as eight hex digits of its unsigned value, as `ipcs` shows it."""
        return None if self.key is None else f"0x{self.key & 0xFFFFFFFF:08x}"

    @property
    def label(self) -> str:
        """How people refer to the object: its name escaped for printing, or its key and id."""
        if self.name is not None:
            return shown(self.name)
        return f"key {self.key_hex} id {self.id}"

    def pid_fields(self) -> dict[str, int | None]:
        """The process-id fields by their JSON prefix (creator, last, ...)."""
        return {
            "creator": self.creator_pid,
            "last": self.last_pid,
            "last_send": self.last_send_pid,
            "last_receive": self.last_receive_pid,
            "notify": self.notify_pid,
        }

    def age_seconds(self, now: float) -> int:
        """Whole seconds from changed_at to now (never negative, clocks can step back)."""
        return max(0, int(now - self.changed_at))

    def to_json(self, now: float, alive) -> dict:
        """The object as a dict with exactly JSON_KEYS; alive(pid) -> bool decides liveness."""
        fields = dataclasses.asdict(self)
        out: dict = {}
        for key in JSON_KEYS:
            if key in fields:
                out[key] = fields[key]
        out["name"] = None if self.name is None else name_text(self.name)
        out["name_hex"] = None if self.name is None else self.name.hex()
        out["key_hex"] = self.key_hex
        out["mode"] = f"{self.mode:04o}"
        out["age_seconds"] = self.age_seconds(now)
        for prefix, pid in self.pid_fields().items():
            out[f"{prefix}_pid"] = pid
            out[f"{prefix}_alive"] = alive(pid) if pid else None
        out["user"] = user_name(self.uid)
        return {key: out[key] for key in JSON_KEYS}
