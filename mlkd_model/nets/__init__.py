"""torch networks: trackers, DarkLighter and the teacher. Import only where torch is installed."""
