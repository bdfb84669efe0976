"""Everything between a viewer and a POD: SSRF guard, playlist rewriting, the relay and its
lean HTTP client, stream authorisation and its cache, method selection, the snapshot fetch."""
