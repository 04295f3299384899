#include "router/dispatch.h"
