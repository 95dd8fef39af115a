// tests/data/shop.cypher: the small test graph (hand-checked, deterministic).
// Schema shared with the demo graph; see docs/HELPERS.md. Dates are ISO strings 'YYYY-MM-DD'.
// Gaps on purpose: P04 and P10 have no rating, C11 has placed no orders, P04 has stock 0.
// Referral chain: C01 -> C03 -> C06 -> C09 (length 3); also C05 -> C07 and C02 -> C10.

// --- categories and suppliers
CREATE (:Category {name: 'Electronics'});
CREATE (:Category {name: 'Books'});
CREATE (:Category {name: 'Home'});
CREATE (:Category {name: 'Sports'});
CREATE (:Supplier {supplier_id: 'S1', name: 'TechSource Ltd', country: 'Taiwan'});
CREATE (:Supplier {supplier_id: 'S2', name: 'PageTurner Books', country: 'United Kingdom'});
CREATE (:Supplier {supplier_id: 'S3', name: 'Casa Goods', country: 'Italy'});

// --- customers
CREATE (:Customer {customer_id: 'C01', name: 'Alice Meyer', email: 'alice.meyer@example.com', city: 'Berlin', country: 'Germany', segment: 'Consumer', joined: '2021-03-14'});
CREATE (:Customer {customer_id: 'C02', name: 'Bob Schmidt', email: 'bob.schmidt@example.com', city: 'Munich', country: 'Germany', segment: 'Corporate', joined: '2020-11-02'});
CREATE (:Customer {customer_id: 'C03', name: 'Claire Dubois', email: 'claire.dubois@example.com', city: 'Paris', country: 'France', segment: 'Consumer', joined: '2022-01-20'});
CREATE (:Customer {customer_id: 'C04', name: 'David Martin', email: 'david.martin@example.com', city: 'Lyon', country: 'France', segment: 'Home Office', joined: '2021-07-08'});
CREATE (:Customer {customer_id: 'C05', name: 'Emma Wilson', email: 'emma.wilson@example.com', city: 'London', country: 'United Kingdom', segment: 'Corporate', joined: '2019-05-30'});
CREATE (:Customer {customer_id: 'C06', name: 'Felix Wagner', email: 'felix.wagner@example.com', city: 'Berlin', country: 'Germany', segment: 'Consumer', joined: '2023-02-11'});
CREATE (:Customer {customer_id: 'C07', name: 'Grace Taylor', email: 'grace.taylor@example.com', city: 'London', country: 'United Kingdom', segment: 'Consumer', joined: '2022-09-17'});
CREATE (:Customer {customer_id: 'C08', name: 'Hugo Garcia', email: 'hugo.garcia@example.com', city: 'Madrid', country: 'Spain', segment: 'Home Office', joined: '2020-04-25'});
CREATE (:Customer {customer_id: 'C09', name: 'Ines Lopez', email: 'ines.lopez@example.com', city: 'Madrid', country: 'Spain', segment: 'Consumer', joined: '2023-06-03'});
CREATE (:Customer {customer_id: 'C10', name: 'Jack Brown', email: 'jack.brown@example.com', city: 'New York', country: 'USA', segment: 'Corporate', joined: '2021-12-01'});
CREATE (:Customer {customer_id: 'C11', name: 'Karin Weber', email: 'karin.weber@example.com', city: 'Hamburg', country: 'Germany', segment: 'Consumer', joined: '2024-01-15'});
CREATE (:Customer {customer_id: 'C12', name: 'Liam Smith', email: 'liam.smith@example.com', city: 'New York', country: 'USA', segment: 'Consumer', joined: '2022-04-22'});

// --- products (no rating property where the product has no reviews score yet)
CREATE (:Product {product_id: 'P01', name: 'Laptop Pro 14', price: 1299.0, stock: 15, rating: 4.6});
CREATE (:Product {product_id: 'P02', name: 'Wireless Mouse', price: 24.99, stock: 120, rating: 4.2});
CREATE (:Product {product_id: 'P03', name: 'Noise-Cancelling Headphones', price: 199.5, stock: 40, rating: 4.7});
CREATE (:Product {product_id: 'P04', name: 'USB-C Hub', price: 39.9, stock: 0});
CREATE (:Product {product_id: 'P05', name: 'The Graph Book', price: 45.0, stock: 60, rating: 4.4});
CREATE (:Product {product_id: 'P06', name: 'Cypher in Practice', price: 38.5, stock: 25, rating: 4.8});
CREATE (:Product {product_id: 'P07', name: 'Mystery at Midnight', price: 12.99, stock: 200, rating: 3.9});
CREATE (:Product {product_id: 'P08', name: 'Ceramic Mug Set', price: 29.0, stock: 80, rating: 4.1});
CREATE (:Product {product_id: 'P09', name: 'Espresso Machine', price: 349.0, stock: 10, rating: 4.5});
CREATE (:Product {product_id: 'P10', name: 'Linen Throw', price: 59.9, stock: 35});
CREATE (:Product {product_id: 'P11', name: 'Yoga Mat', price: 25.0, stock: 150, rating: 4.3});
CREATE (:Product {product_id: 'P12', name: 'Running Shoes', price: 119.0, stock: 45, rating: 4.0});

// --- catalogue links
MATCH (p:Product {product_id: 'P01'}), (c:Category {name: 'Electronics'}) CREATE (p)-[:IN_CATEGORY]->(c);
MATCH (p:Product {product_id: 'P02'}), (c:Category {name: 'Electronics'}) CREATE (p)-[:IN_CATEGORY]->(c);
MATCH (p:Product {product_id: 'P03'}), (c:Category {name: 'Electronics'}) CREATE (p)-[:IN_CATEGORY]->(c);
MATCH (p:Product {product_id: 'P04'}), (c:Category {name: 'Electronics'}) CREATE (p)-[:IN_CATEGORY]->(c);
MATCH (p:Product {product_id: 'P05'}), (c:Category {name: 'Books'}) CREATE (p)-[:IN_CATEGORY]->(c);
MATCH (p:Product {product_id: 'P06'}), (c:Category {name: 'Books'}) CREATE (p)-[:IN_CATEGORY]->(c);
MATCH (p:Product {product_id: 'P07'}), (c:Category {name: 'Books'}) CREATE (p)-[:IN_CATEGORY]->(c);
MATCH (p:Product {product_id: 'P08'}), (c:Category {name: 'Home'}) CREATE (p)-[:IN_CATEGORY]->(c);
MATCH (p:Product {product_id: 'P09'}), (c:Category {name: 'Home'}) CREATE (p)-[:IN_CATEGORY]->(c);
MATCH (p:Product {product_id: 'P10'}), (c:Category {name: 'Home'}) CREATE (p)-[:IN_CATEGORY]->(c);
MATCH (p:Product {product_id: 'P11'}), (c:Category {name: 'Sports'}) CREATE (p)-[:IN_CATEGORY]->(c);
MATCH (p:Product {product_id: 'P12'}), (c:Category {name: 'Sports'}) CREATE (p)-[:IN_CATEGORY]->(c);
MATCH (s:Supplier {supplier_id: 'S1'}), (p:Product {product_id: 'P01'}) CREATE (s)-[:SUPPLIES]->(p);
MATCH (s:Supplier {supplier_id: 'S1'}), (p:Product {product_id: 'P02'}) CREATE (s)-[:SUPPLIES]->(p);
MATCH (s:Supplier {supplier_id: 'S1'}), (p:Product {product_id: 'P03'}) CREATE (s)-[:SUPPLIES]->(p);
MATCH (s:Supplier {supplier_id: 'S1'}), (p:Product {product_id: 'P04'}) CREATE (s)-[:SUPPLIES]->(p);
MATCH (s:Supplier {supplier_id: 'S2'}), (p:Product {product_id: 'P05'}) CREATE (s)-[:SUPPLIES]->(p);
MATCH (s:Supplier {supplier_id: 'S2'}), (p:Product {product_id: 'P06'}) CREATE (s)-[:SUPPLIES]->(p);
MATCH (s:Supplier {supplier_id: 'S2'}), (p:Product {product_id: 'P07'}) CREATE (s)-[:SUPPLIES]->(p);
MATCH (s:Supplier {supplier_id: 'S3'}), (p:Product {product_id: 'P08'}) CREATE (s)-[:SUPPLIES]->(p);
MATCH (s:Supplier {supplier_id: 'S3'}), (p:Product {product_id: 'P09'}) CREATE (s)-[:SUPPLIES]->(p);
MATCH (s:Supplier {supplier_id: 'S3'}), (p:Product {product_id: 'P10'}) CREATE (s)-[:SUPPLIES]->(p);
MATCH (s:Supplier {supplier_id: 'S3'}), (p:Product {product_id: 'P11'}) CREATE (s)-[:SUPPLIES]->(p);
MATCH (s:Supplier {supplier_id: 'S1'}), (p:Product {product_id: 'P12'}) CREATE (s)-[:SUPPLIES]->(p);

// --- orders: total = sum(quantity * unit_price)
MATCH (c:Customer {customer_id: 'C01'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O01', date: '2023-01-15', status: 'delivered', total: 1323.99});
MATCH (c:Customer {customer_id: 'C01'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O02', date: '2023-06-02', status: 'delivered', total: 90.0});
MATCH (c:Customer {customer_id: 'C01'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O03', date: '2024-02-20', status: 'shipped', total: 407.0});
MATCH (c:Customer {customer_id: 'C02'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O04', date: '2023-03-11', status: 'delivered', total: 518.7});
MATCH (c:Customer {customer_id: 'C02'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O05', date: '2024-05-07', status: 'delivered', total: 2598.0});
MATCH (c:Customer {customer_id: 'C03'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O06', date: '2023-08-19', status: 'delivered', total: 122.47});
MATCH (c:Customer {customer_id: 'C03'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O07', date: '2024-07-01', status: 'pending', total: 25.0});
MATCH (c:Customer {customer_id: 'C04'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O08', date: '2023-11-23', status: 'cancelled', total: 119.8});
MATCH (c:Customer {customer_id: 'C05'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O09', date: '2023-02-05', status: 'delivered', total: 814.0});
MATCH (c:Customer {customer_id: 'C05'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O10', date: '2023-12-12', status: 'delivered', total: 199.5});
MATCH (c:Customer {customer_id: 'C05'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O11', date: '2024-09-30', status: 'shipped', total: 288.0});
MATCH (c:Customer {customer_id: 'C06'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O12', date: '2024-01-08', status: 'delivered', total: 62.97});
MATCH (c:Customer {customer_id: 'C07'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O13', date: '2023-05-14', status: 'delivered', total: 77.0});
MATCH (c:Customer {customer_id: 'C07'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O14', date: '2024-03-03', status: 'delivered', total: 119.0});
MATCH (c:Customer {customer_id: 'C08'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O15', date: '2023-09-09', status: 'delivered', total: 88.9});
MATCH (c:Customer {customer_id: 'C09'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O16', date: '2024-04-18', status: 'pending', total: 45.0});
MATCH (c:Customer {customer_id: 'C10'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O17', date: '2023-07-27', status: 'delivered', total: 1523.49});
MATCH (c:Customer {customer_id: 'C10'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O18', date: '2024-08-15', status: 'shipped', total: 349.0});
MATCH (c:Customer {customer_id: 'C12'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O19', date: '2024-10-02', status: 'delivered', total: 90.46});
MATCH (c:Customer {customer_id: 'C04'})
CREATE (c)-[:PLACED]->(:Order {order_id: 'O20', date: '2024-06-21', status: 'delivered', total: 144.0});
MATCH (o:Order {order_id: 'O01'}), (p:Product {product_id: 'P01'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 1299.0}]->(p);
MATCH (o:Order {order_id: 'O01'}), (p:Product {product_id: 'P02'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 24.99}]->(p);
MATCH (o:Order {order_id: 'O02'}), (p:Product {product_id: 'P05'}) CREATE (o)-[:CONTAINS {quantity: 2, unit_price: 45.0}]->(p);
MATCH (o:Order {order_id: 'O03'}), (p:Product {product_id: 'P09'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 349.0}]->(p);
MATCH (o:Order {order_id: 'O03'}), (p:Product {product_id: 'P08'}) CREATE (o)-[:CONTAINS {quantity: 2, unit_price: 29.0}]->(p);
MATCH (o:Order {order_id: 'O04'}), (p:Product {product_id: 'P03'}) CREATE (o)-[:CONTAINS {quantity: 2, unit_price: 199.5}]->(p);
MATCH (o:Order {order_id: 'O04'}), (p:Product {product_id: 'P04'}) CREATE (o)-[:CONTAINS {quantity: 3, unit_price: 39.9}]->(p);
MATCH (o:Order {order_id: 'O05'}), (p:Product {product_id: 'P01'}) CREATE (o)-[:CONTAINS {quantity: 2, unit_price: 1299.0}]->(p);
MATCH (o:Order {order_id: 'O06'}), (p:Product {product_id: 'P06'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 38.5}]->(p);
MATCH (o:Order {order_id: 'O06'}), (p:Product {product_id: 'P05'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 45.0}]->(p);
MATCH (o:Order {order_id: 'O06'}), (p:Product {product_id: 'P07'}) CREATE (o)-[:CONTAINS {quantity: 3, unit_price: 12.99}]->(p);
MATCH (o:Order {order_id: 'O07'}), (p:Product {product_id: 'P11'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 25.0}]->(p);
MATCH (o:Order {order_id: 'O08'}), (p:Product {product_id: 'P10'}) CREATE (o)-[:CONTAINS {quantity: 2, unit_price: 59.9}]->(p);
MATCH (o:Order {order_id: 'O09'}), (p:Product {product_id: 'P09'}) CREATE (o)-[:CONTAINS {quantity: 2, unit_price: 349.0}]->(p);
MATCH (o:Order {order_id: 'O09'}), (p:Product {product_id: 'P08'}) CREATE (o)-[:CONTAINS {quantity: 4, unit_price: 29.0}]->(p);
MATCH (o:Order {order_id: 'O10'}), (p:Product {product_id: 'P03'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 199.5}]->(p);
MATCH (o:Order {order_id: 'O11'}), (p:Product {product_id: 'P12'}) CREATE (o)-[:CONTAINS {quantity: 2, unit_price: 119.0}]->(p);
MATCH (o:Order {order_id: 'O11'}), (p:Product {product_id: 'P11'}) CREATE (o)-[:CONTAINS {quantity: 2, unit_price: 25.0}]->(p);
MATCH (o:Order {order_id: 'O12'}), (p:Product {product_id: 'P02'}) CREATE (o)-[:CONTAINS {quantity: 2, unit_price: 24.99}]->(p);
MATCH (o:Order {order_id: 'O12'}), (p:Product {product_id: 'P07'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 12.99}]->(p);
MATCH (o:Order {order_id: 'O13'}), (p:Product {product_id: 'P06'}) CREATE (o)-[:CONTAINS {quantity: 2, unit_price: 38.5}]->(p);
MATCH (o:Order {order_id: 'O14'}), (p:Product {product_id: 'P12'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 119.0}]->(p);
MATCH (o:Order {order_id: 'O15'}), (p:Product {product_id: 'P08'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 29.0}]->(p);
MATCH (o:Order {order_id: 'O15'}), (p:Product {product_id: 'P10'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 59.9}]->(p);
MATCH (o:Order {order_id: 'O16'}), (p:Product {product_id: 'P05'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 45.0}]->(p);
MATCH (o:Order {order_id: 'O17'}), (p:Product {product_id: 'P01'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 1299.0}]->(p);
MATCH (o:Order {order_id: 'O17'}), (p:Product {product_id: 'P03'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 199.5}]->(p);
MATCH (o:Order {order_id: 'O17'}), (p:Product {product_id: 'P02'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 24.99}]->(p);
MATCH (o:Order {order_id: 'O18'}), (p:Product {product_id: 'P09'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 349.0}]->(p);
MATCH (o:Order {order_id: 'O19'}), (p:Product {product_id: 'P07'}) CREATE (o)-[:CONTAINS {quantity: 4, unit_price: 12.99}]->(p);
MATCH (o:Order {order_id: 'O19'}), (p:Product {product_id: 'P06'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 38.5}]->(p);
MATCH (o:Order {order_id: 'O20'}), (p:Product {product_id: 'P11'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 25.0}]->(p);
MATCH (o:Order {order_id: 'O20'}), (p:Product {product_id: 'P12'}) CREATE (o)-[:CONTAINS {quantity: 1, unit_price: 119.0}]->(p);

// --- reviews
MATCH (c:Customer {customer_id: 'C01'}), (p:Product {product_id: 'P01'})
CREATE (c)-[:REVIEWED {stars: 5, text: 'Fast and light, great screen.', date: '2023-02-01'}]->(p);
MATCH (c:Customer {customer_id: 'C01'}), (p:Product {product_id: 'P05'})
CREATE (c)-[:REVIEWED {stars: 4, text: 'Clear introduction to graphs.', date: '2023-06-20'}]->(p);
MATCH (c:Customer {customer_id: 'C02'}), (p:Product {product_id: 'P03'})
CREATE (c)-[:REVIEWED {stars: 5, text: 'Silence at last.', date: '2023-03-30'}]->(p);
MATCH (c:Customer {customer_id: 'C02'}), (p:Product {product_id: 'P04'})
CREATE (c)-[:REVIEWED {stars: 2, text: 'Stopped working after a month.', date: '2023-05-02'}]->(p);
MATCH (c:Customer {customer_id: 'C03'}), (p:Product {product_id: 'P06'})
CREATE (c)-[:REVIEWED {stars: 5, text: 'The best Cypher book.', date: '2023-09-01'}]->(p);
MATCH (c:Customer {customer_id: 'C03'}), (p:Product {product_id: 'P07'})
CREATE (c)-[:REVIEWED {stars: 3, text: 'Predictable ending.', date: '2023-09-15'}]->(p);
MATCH (c:Customer {customer_id: 'C05'}), (p:Product {product_id: 'P09'})
CREATE (c)-[:REVIEWED {stars: 4, text: 'Great coffee, loud pump.', date: '2023-02-20'}]->(p);
MATCH (c:Customer {customer_id: 'C07'}), (p:Product {product_id: 'P06'})
CREATE (c)-[:REVIEWED {stars: 4, text: 'Good examples.', date: '2023-05-30'}]->(p);
MATCH (c:Customer {customer_id: 'C07'}), (p:Product {product_id: 'P12'})
CREATE (c)-[:REVIEWED {stars: 5, text: 'Comfortable from day one.', date: '2024-03-20'}]->(p);
MATCH (c:Customer {customer_id: 'C08'}), (p:Product {product_id: 'P10'})
CREATE (c)-[:REVIEWED {stars: 3, text: 'Softer than expected but thin.', date: '2023-09-25'}]->(p);
MATCH (c:Customer {customer_id: 'C10'}), (p:Product {product_id: 'P01'})
CREATE (c)-[:REVIEWED {stars: 4, text: 'Solid machine for work.', date: '2023-08-10'}]->(p);
MATCH (c:Customer {customer_id: 'C12'}), (p:Product {product_id: 'P07'})
CREATE (c)-[:REVIEWED {stars: 1, text: 'Could not finish it.', date: '2024-10-20'}]->(p);

// --- referrals
MATCH (a:Customer {customer_id: 'C01'}), (b:Customer {customer_id: 'C03'}) CREATE (a)-[:REFERRED]->(b);
MATCH (a:Customer {customer_id: 'C03'}), (b:Customer {customer_id: 'C06'}) CREATE (a)-[:REFERRED]->(b);
MATCH (a:Customer {customer_id: 'C06'}), (b:Customer {customer_id: 'C09'}) CREATE (a)-[:REFERRED]->(b);
MATCH (a:Customer {customer_id: 'C05'}), (b:Customer {customer_id: 'C07'}) CREATE (a)-[:REFERRED]->(b);
MATCH (a:Customer {customer_id: 'C02'}), (b:Customer {customer_id: 'C10'}) CREATE (a)-[:REFERRED]->(b);
