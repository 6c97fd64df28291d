# Link layers: HDLC (IEC 62056-46) and the TCP/UDP wrapper (IEC 62056-47).


def copy_in(rx, w, data, start, end):
    # Append data[start:end] to the receive buffer rx at w, as much as fits;
    # return the number of bytes taken. A whole buffer is copied without
    # allocating (a part of one costs a memoryview).
    n = end - start
    free = len(rx) - w
    if n > free:
        n = free
    if n <= 0:
        return 0
    if start == 0 and end == len(data) and n == end:
        rx[w : w + n] = data
    else:
        rx[w : w + n] = memoryview(data)[start : start + n]
    return n
