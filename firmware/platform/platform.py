"""tinyq's local PlatformIO dev-platform: nothing to download, the toolchain is the system's."""
from platformio.public import PlatformBase


class TinyqqemuPlatform(PlatformBase):
    pass
