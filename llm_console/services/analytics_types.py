"""What the Analytics page shows, as plain frozen dataclasses (the contract between
`llm_console.services.analytics` with `analytics_ab` and `analytics_signals`, which compute them, and the
page's state, which renders them).

Models are the aliases clients ask for. Times are UTC. Every ratio is None when its denominator is zero,
and every confidence interval is None when there are too few samples to state one honestly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class TracePoint:
    """Calls in one bucket of the range (minute, hour or day, by the range's length)."""

    bucket: datetime
    requests: int
    errors: int
    tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class UsersPoint:
    """Distinct users on one UTC day: end users named by the caller, plus key owners (or keys) for calls
    that named none (`users` is both together)."""

    day: date
    users: int
    end_users: int


@dataclass(frozen=True, slots=True)
class Heatmap:
    """Requests per weekday (0 = Monday) and UTC hour over the range: cells[weekday][hour]."""

    cells: list[list[int]]
    total: int
    peak_weekday: int | None  # None when there was no traffic
    peak_hour: int | None
    peak_requests: int


@dataclass(frozen=True, slots=True)
class ModelEconomics:
    alias: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: float
    cost_per_request: float | None
    cost_per_1k_tokens: float | None
    tokens_per_request: float | None
    cached_share: float | None  # cached / prompt tokens


@dataclass(frozen=True, slots=True)
class ModelErrors:
    alias: str
    requests: int
    errors: int
    error_rate: float | None
    ci_low: float | None  # 95 % Wilson score interval of the error rate
    ci_high: float | None


@dataclass(frozen=True, slots=True)
class ModelScore:
    """Feedback named `name` given to calls of one model in the range: numeric mean with a 95 % CI
    (normal approximation, at least 2 scores), and the count of each category for categorical scores."""

    alias: str
    name: str
    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    categories: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScorePoint:
    day: date
    name: str
    n: int
    mean: float | None


@dataclass(frozen=True, slots=True)
class FeedbackSummary:
    names: list[str]  # every score name seen in the range, sorted
    by_model: list[ModelScore]
    over_time: list[ScorePoint]
    total: int


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One model side by side with the others (the comparison table)."""

    alias: str
    requests: int
    p50_ms: float | None
    p95_ms: float | None
    mean_ms: float | None
    output_tokens_per_s: float | None  # completion tokens / seconds spent in calls
    cost_per_request: float | None
    error_rate: float | None
    score_name: str | None  # the most given numeric score in the range
    score_mean: float | None
    score_n: int


@dataclass(frozen=True, slots=True)
class Arm:
    """One side of an A/B split (a deployment or a model)."""

    label: str
    value: str  # deployment id or alias
    n: int
    errors: int
    error_rate: float | None
    error_ci: tuple[float, float] | None  # 95 % Wilson
    mean_latency_ms: float | None
    latency_ci: tuple[float, float] | None  # 95 %, normal approximation of the mean
    p95_latency_ms: float | None
    cost_per_request: float | None
    cost_ci: tuple[float, float] | None
    score_n: int
    score_mean: float | None
    score_ci: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class ArmDifference:
    """B minus A for one metric, with the 95 % CI of the difference (Welch for means, Newcombe's hybrid
    Wilson interval for proportions); significant when the interval excludes zero."""

    metric: str  # error_rate | latency_ms | cost_per_request | score
    a: float | None
    b: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    significant: bool


@dataclass(frozen=True, slots=True)
class ABResult:
    kind: str  # deployment | alias
    a: Arm
    b: Arm
    differences: list[ArmDifference]
    method: str  # one sentence, shown under the table
    sampled: bool  # True when an arm had more calls than were read (the newest are read)


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A flagged hour: `value` is robust-z standard deviations from the median of the preceding window."""

    metric: str  # spend | error_rate | latency
    at: datetime  # the hour's start
    value: float
    median: float
    mad: float
    z: float
    direction: str  # up | down


@dataclass(frozen=True, slots=True)
class AnomalyReport:
    anomalies: list[Anomaly]
    method: str  # how flags are decided, shown on the page
    hours_checked: int


@dataclass(frozen=True, slots=True)
class ForecastPoint:
    day: date
    value: float
    low: float  # 95 % prediction interval
    high: float


@dataclass(frozen=True, slots=True)
class Forecast:
    """A least-squares line through the last `history_days` full days, projected `horizon` days ahead."""

    metric: str  # requests | tokens | cost_usd
    history: list[tuple[date, float]]
    points: list[ForecastPoint]
    slope_per_day: float
    next_7_days_total: float
    method: str


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One suggestion with the figures behind it (label -> formatted figure), most valuable first."""

    kind: str  # cheaper_model | error_hotspot | cache_prompts | latency_outlier ...
    title: str
    detail: str
    figures: dict[str, str]
    saving_usd: float | None = None
