package cache

import "github.com/strata-mail/strata/blobstore"

// Backend returns the store the cache is in front of, for metrics of the whole chain.
func (c *Cache) Backend() blobstore.Store { return c.store }
