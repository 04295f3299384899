/* config: YAML configuration loading (placeholder until the config module lands). */
