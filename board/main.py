# Start the meter of the board named in /dlms_board.json (tools/deploy.py
# writes it; the definitions are /boards/<name>.json). A file /no_meter
# keeps the REPL free for maintenance: `import os; os.remove("no_meter")`.
import os

try:
    os.stat("/no_meter")
    print("dlms_micro: /no_meter present, meter not started")
except OSError:
    from dlms_micro_mp import board

    board.start()
