"""The local HTTP service: the app and its routes (`app`), request guards (`guard`) and the job queue (`jobs`)."""
