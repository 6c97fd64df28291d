# Shared by the script, schedule and time-of-use tests: the port's storage
# (bytes by key; put is atomic on a board) kept in a dict.


class Store:
    def __init__(self):
        self.d = {}

    def get(self, k):
        return self.d.get(k)

    def put(self, k, v):
        assert isinstance(v, bytes)
        self.d[k] = v
