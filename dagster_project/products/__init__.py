"""Products: `Product`, the one product-asset builder, publishing a product's rows."""
