#pragma once

/// Marks what libtessera_api.so exports; everything else in it stays hidden.
#define TESSERA_API [[gnu::visibility("default")]]
