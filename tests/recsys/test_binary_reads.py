"""Binary reads (``services.vectors``): vectors arrive as float32 arrays, and independent reads
share one round trip (``fetch_binary_many``, used by the interest fold)."""
from __future__ import annotations

import numpy as np
import pytest
from django.db import DatabaseError, connection, transaction

from recsys.models import Item
from recsys.services.vectors import fetch_binary, fetch_binary_many

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def items():
    vectors = np.random.default_rng(4).standard_normal((3, 8)).astype(np.float32)
    for n, vector in enumerate(vectors):
        Item.objects.create(item_id=f"bin{n}", title=f"Binary {n}", embedding=vector, embedding_model="test")
    return vectors


def test_reads_in_one_call_equal_the_same_reads_one_by_one(items):
    reads = [("SELECT item_id, embedding FROM recsys_item WHERE item_id = ANY(%s) ORDER BY item_id", [["bin0", "bin2"]]),
             ("SELECT title, categories, created_at FROM recsys_item WHERE item_id = %s", ["bin1"]),
             ("SELECT item_id FROM recsys_item WHERE item_id = %s", ["missing"])]
    together = fetch_binary_many(reads)
    assert together == [fetch_binary(sql, params) for sql, params in reads]
    (a, va), (b, vb) = together[0]
    assert (a, b) == ("bin0", "bin2")
    np.testing.assert_array_equal(va.to_numpy(), items[0])
    np.testing.assert_array_equal(vb.to_numpy(), items[2])
    assert together[1][0][0] == "Binary 1" and together[2] == []


def test_a_failing_read_raises_a_database_error_and_the_connection_goes_on(items):
    with pytest.raises(DatabaseError, match="no_such_column"):
        with transaction.atomic():
            fetch_binary_many([("SELECT item_id FROM recsys_item", []), ("SELECT no_such_column FROM recsys_item", [])])
    assert Item.objects.filter(item_id__startswith="bin").count() == 3  # nothing lost
    assert fetch_binary_many([("SELECT count(*) FROM recsys_item WHERE item_id LIKE 'bin%%'", [])]) == [[(3,)]]
    assert connection.connection.pgconn.pipeline_status == 0  # not left in pipeline mode
