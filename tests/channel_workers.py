"""Worker processes of the ipcxx.Channel stress tests (tests/test_channel_stress.py).

    python channel_workers.py producer NAME PRODUCER_ID QUOTA PROGRESS_FILE
    python channel_workers.py consumer NAME RECORD_FILE

A message is 8 bytes (producer id, sequence number, both u32) followed by a filler whose every
byte is (id + seq) % 251 and whose length varies, so records of many sizes and PAD records occur
and a half-written message would be seen. A producer mixes send(), send_many() and reserve()
(pausing half-way through writing a reservation, so that kills often land there); after each
message returns it stores its count of committed messages in bytes 0-7 of PROGRESS_FILE (an
mmap: a store, no syscall, so a kill lands anywhere), and it stops after QUOTA messages or
(QUOTA 0) once the parent sets byte 8. A consumer mixes receive(), receive_many() and peek()
(pausing inside the peek), and appends each message's (id, seq) to RECORD_FILE, an mmap of u64
slots whose slot 0 counts the records; the end of the stream (ipcxx.EndOfStream: every producer
finished or died and the ring is drained) ends it, with no sentinel message. Both print "ready"
once the channel is open.
"""

from __future__ import annotations

import mmap
import struct
import sys
import time

import ipcxx

HEADER = struct.Struct("<II")
RECORD_SLOTS = 1 << 24  # u64 slots of a consumer's record file (slot 0 is the count)


def message(producer: int, seq: int) -> bytes:
    filler = (producer * 7 + seq * 13) % 300
    return HEADER.pack(producer, seq) + bytes([(producer + seq) % 251]) * filler


def check(data: bytes | memoryview) -> tuple[int, int]:
    producer, seq = HEADER.unpack_from(data)
    expected = (producer + seq) % 251
    body = bytes(data[HEADER.size :])
    if len(body) != (producer * 7 + seq * 13) % 300 or body.count(expected) != len(body):
        raise SystemExit(f"corrupt message {producer}/{seq}")
    return producer, seq


def produce(name: str, producer: int, quota: int, progress_path: str) -> None:
    channel = ipcxx.Channel(name)
    with open(progress_path, "r+b") as file:
        progress = mmap.mmap(file.fileno(), 16)
    print("ready", flush=True)
    seq = turn = 0
    while seq < quota if quota else not progress[8]:
        turn += 1
        kind = turn % 3
        if kind == 0:
            channel.send(message(producer, seq))
            seq += 1
        elif kind == 1:
            batch = [message(producer, s) for s in range(seq, min(seq + 8, quota or seq + 8))]
            seq += channel.send_many(batch)
        else:
            data = message(producer, seq)
            with channel.reserve(len(data)) as view:
                # Half written, then a pause: kills land inside the reservation often, and a
                # half-written message must never be delivered.
                half = len(data) // 2
                view[:half] = data[:half]
                time.sleep(0.0002)
                view[half:] = data[half:]
            seq += 1
        progress[0:8] = seq.to_bytes(8, "little")


def consume(name: str, record_path: str) -> None:
    channel = ipcxx.Channel(name)
    with open(record_path, "r+b") as file:
        record = mmap.mmap(file.fileno(), 8 * RECORD_SLOTS)
    count = 0
    print("ready", flush=True)

    def note(data: bytes | memoryview) -> None:
        nonlocal count
        producer, seq = check(data)
        if count + 1 >= RECORD_SLOTS:
            raise SystemExit("record file full")
        # Slice assignments: one 8-byte copy each. struct.pack_into zeroes its field before it
        # writes the value (CPython's s_pack_internal), so a kill between the two left the
        # count at 0 and every record of this consumer unread (the storm's rare "missing").
        slot = 8 * (count + 1)
        record[slot : slot + 8] = (producer << 32 | seq).to_bytes(8, "little")
        count += 1
        record[0:8] = count.to_bytes(8, "little")

    turn = 0
    try:
        while True:
            turn += 1
            if turn % 3 == 0:
                for data in channel.receive_many(16):
                    note(data)
            elif turn % 3 == 1:
                note(channel.receive())
            else:
                with channel.peek() as view:
                    time.sleep(0.0002)  # a kill here loses the peeked message (counted in lost)
                    note(view)
    except ipcxx.EndOfStream:
        return


def main() -> None:
    role = sys.argv[1]
    if role == "producer":
        produce(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif role == "consumer":
        consume(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()
