#include "config/config.h"
typedef int tg_config_placeholder;
