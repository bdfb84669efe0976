from platebridge.pod.cli import main

raise SystemExit(main())
