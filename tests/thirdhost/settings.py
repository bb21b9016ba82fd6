"""Settings of the third host: the second host's (the same real services), with this shop and its adapter, and
no DRF schema class (adengine's API documents itself without one)."""

from tests.hostapp.settings import *  # noqa: F403
from tests.hostapp.settings import ADENGINE, DATABASES, INSTALLED_APPS

SECRET_KEY = "thirdhost-tests-only-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEF"
INSTALLED_APPS = [("tests.thirdhost" if app == "tests.hostapp" else app) for app in INSTALLED_APPS]
ROOT_URLCONF = "tests.thirdhost.urls"
DATABASES = {"default": {**DATABASES["default"], "NAME": "thirdhost"}}  # its own test database: test_thirdhost
REST_FRAMEWORK = {}
ADENGINE_PRODUCT_MODEL = "thirdhost.Product"
ADENGINE_ORDER_MODEL = "thirdhost.Order"
# its products' keys are their variants' SKUs, which the adapter maps (match_products, product_key)
ADENGINE = {
    **{k: v for k, v in ADENGINE.items() if k != "PRODUCT_KEY_FIELD"},
    "SHOP_ADAPTER": "tests.thirdhost.adapter.ThirdAdapter",
}
