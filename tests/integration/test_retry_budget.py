"""The retry budget: when a whole pool fails, retries are capped at a share
of the recent requests instead of multiplying the load.

Method: a pool of three addresses nothing listens on, retries 2. Every
request fails (502) whatever happens; ringlb's debug log has one line per
failed connect, which counts the attempts. Without a budget each request
costs 3 connects; with retry_budget 20 and retry_budget_min 0, 30 requests
may add at most 6 retries.
"""

from lib import closed_port, timeout


def connect_failures(t, budget):
    dead = ["127.0.0.1:%d" % closed_port() for _ in range(3)]
    cfg = t.config(dead, log_level="debug")
    pool = cfg["pools"][0]
    pool["retries"] = 2
    pool["retry_budget"] = budget
    pool["retry_budget_min"] = 0
    proxy = t.ringlb(cfg, name="ringlb-budget%d" % budget)
    c = t.connect(proxy.port)
    for i in range(30):
        t.eq(c.request("GET", "/").status, 502, "status of request %d" % i)
    return proxy.proc.stderr_text().count("Connection refused")


@timeout(60)
def test_retry_budget_caps_retries(t):
    unlimited = connect_failures(t, 0)
    t.eq(unlimited, 90, "connect attempts without a budget (30 requests x 3 tries)")
    budgeted = connect_failures(t, 20)
    t.note("connect attempts: %d without a budget, %d with 20%%" % (unlimited, budgeted))
    t.check(30 <= budgeted <= 36, "connect attempts with a 20%% budget: %d" % budgeted)
