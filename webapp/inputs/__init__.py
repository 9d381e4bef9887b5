"""The one validation layer: plain input (a JSON body, a form turned into the same shape, a query string) →
checked values and domain objects. The HTML forms and the JSON API both call these functions; the rules
themselves live in the domain classes. ``bodies`` checks what is sent, ``queries`` what is asked for."""
from .bodies import (MAX_ID, acting_as, credentials, environment_changes, event_changes, migration, storage,
                     token, upload, user, user_changes, workload)
from .runs import run
from .waves import wave
from .holds import hold
from .schedules import schedule
from .testhistory import TEST_FILTERS, history_args, test_filters
from .queries import (AUDIT_FILTERS, DEFAULT_PER_PAGE, EVENT_FILTERS, MAX_PER_PAGE, RUN_FILTERS, audit_filters,
                      event_filters, filter_args, label_filter, migration_filters, offset, page, pool_label,
                      queue_target, run_filters, test_outcome)

__all__ = ["MAX_ID", "acting_as", "credentials", "environment_changes", "event_changes", "migration", "run", "storage",
           "token", "upload", "user", "user_changes", "workload", "AUDIT_FILTERS", "DEFAULT_PER_PAGE", "EVENT_FILTERS",
           "MAX_PER_PAGE", "RUN_FILTERS", "audit_filters", "event_filters", "filter_args", "migration_filters",
           "offset", "page", "pool_label", "queue_target", "run_filters", "label_filter", "test_outcome", "wave",
           "hold", "schedule",
           "TEST_FILTERS", "history_args", "test_filters"]
