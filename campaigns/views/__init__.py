"""Campaign pages: campaigns with their leads and lead files, and the do-not-call lists."""
