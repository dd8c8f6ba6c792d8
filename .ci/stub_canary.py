# region imports
from AlgorithmImports import *

# endregion
"""Proof that the stubs type check is real: every line marked `expect:` must be flagged by mypy.

.ci/run type-checks this file on its own and fails unless mypy reports each expected error. If a tool
upgrade ever made these pass silently, the check over main.py would be worthless, and CI says so.
"""


class StubCanary(QCAlgorithm):
    def initialize(self) -> None:
        self.object_store.saev("key", "text")  # expect: "ObjectStore" has no attribute "saev"
        rule = self.time_rules.at(15, 45)
        self.Schedule.on(self.date_rules.every_day(), rule, self.initialize)  # expect: has no attribute "Schedule"
        self.time_rules.at("15:45")  # expect: No overload variant of "at"

    def on_order_event(self, order_event: OrderEvent) -> None:
        if order_event.status == OrderStatus.Filled:  # expect: "type[OrderStatus]" has no attribute "Filled"
            self.debug("filled")
