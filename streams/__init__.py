from streams import uvloop_writes

uvloop_writes.apply()
