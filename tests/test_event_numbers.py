"""Rooms' event numbers: each room's numbers come in the order asked, once each, whoever asks at once."""

import random
import threading
from collections import defaultdict

import pytest
from django.db import connection, connections, transaction

from chat.models.events import RoomClock, take_numbers


@pytest.mark.django_db
def test_each_room_s_numbers_follow_its_counter_in_the_order_listed():
    RoomClock.objects.create(room="Alpha", last=5)
    RoomClock.objects.create(room="Beta", last=1)
    with transaction.atomic():
        assert take_numbers(connection, ["Beta", "Alpha", "Beta", "Gamma", "Beta"]) == [2, 6, 3, 1, 4]
    assert dict(RoomClock.objects.values_list("room", "last")) == {"Alpha": 6, "Beta": 4, "Gamma": 1}
    assert take_numbers(connection, []) == []


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_transactions_taking_numbers_of_the_same_rooms_at_once_never_deadlock_or_repeat_one():
    """Each transaction lists its rooms in its own order (a growth batch lists them as its replies
    came): were rows locked in that order, two of them would wait for each other in a cycle."""
    rooms = [f"Room{i}" for i in range(6)]
    taken, failures = defaultdict(list), []
    start = threading.Barrier(4)

    def worker(seed):
        pick = random.Random(seed)
        start.wait()
        try:
            for _ in range(40):
                listed = pick.choices(rooms, k=pick.randint(1, 8))
                with transaction.atomic():
                    numbers = take_numbers(connection, listed)
                    for room, number in zip(listed, numbers):
                        taken[room].append(number)
        except Exception as problem:  # noqa: BLE001 - any failure (a deadlock above all) is the finding
            failures.append(repr(problem))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    last = dict(RoomClock.objects.values_list("room", "last"))
    for room, numbers in taken.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)) and last[room] == len(numbers), room
