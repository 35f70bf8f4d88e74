"""A module that leaves a thread running when imported: a zygote that preloads it must refuse to fork."""

import threading
import time

threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
