//! The rows of the dealer-management database, generated server-side: word lists, and the SQL
//! that fills the tables from them with `generate_series` and `random()`.

use crate::schema::Scale;

/// The SQL array literal of a `|`-separated word list, and its length.
fn array(words: &str) -> (String, usize) {
    let list: Vec<String> = words
        .split('|')
        .map(|w| format!("'{}'", w.replace('\'', "''")))
        .collect();
    (format!("(ARRAY[{}])", list.join(",")), list.len())
}

/// An SQL expression that picks one word of a `|`-separated list at random.
fn pick(words: &str) -> String {
    let (array, n) = array(words);
    format!("{array}[1 + floor(random() * {n})::int]")
}

/// Field `i` of every `a:b:c` entry of a `|`-separated list, as a list.
fn column(entries: &str, i: usize) -> String {
    entries
        .split('|')
        .map(|e| e.split(':').nth(i).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("|")
}

const FIRST_NAMES: &str = "James|Mary|Robert|Patricia|John|Jennifer|Michael|Linda|David|Elizabeth|\
    William|Barbara|Richard|Susan|Joseph|Jessica|Thomas|Sarah|Carlos|Karen|Daniel|Lisa|Matthew|\
    Nancy|Anthony|Betty|Mark|Maria|Steven|Sandra|Paul|Ashley|Andrew|Emily|Kevin|Donna|Brian|\
    Michelle|Luis|Aisha|Wei|Priya|Omar|Sofia|Hiroshi|Fatima";
const LAST_NAMES: &str = "Smith|Johnson|Williams|Brown|Jones|Garcia|Miller|Davis|Rodriguez|\
    Martinez|Hernandez|Lopez|Gonzalez|Wilson|Anderson|Thomas|Taylor|Moore|Jackson|Martin|Lee|\
    Perez|Thompson|White|Harris|Sanchez|Clark|Ramirez|Lewis|Robinson|Walker|Young|Allen|King|\
    Wright|Scott|Torres|Nguyen|Hill|Flores|Green|Adams|Nelson|Baker|Chen|Patel|Kim|Okafor";
const STREETS: &str = "Main|Oak|Pine|Maple|Cedar|Elm|Washington|Lake|Hill|Park|Sunset|Lincoln|\
    Jackson|Church|Highland|Ridge|River|Meadow|Forest|Spring|Valley|Franklin|Madison|Walnut|\
    Willow|Chestnut|Mill|Center";
const STREET_SUFFIXES: &str = "St|Ave|Rd|Blvd|Dr|Ln|Ct|Way|Pl|Ter";
/// `city:state:ZIP prefix`, separated by `|`
const CITIES: &str = "Springfield:IL:627|Columbus:OH:432|Austin:TX:787|Dallas:TX:752|\
    Houston:TX:770|Phoenix:AZ:850|Denver:CO:802|Atlanta:GA:303|Charlotte:NC:282|Nashville:TN:372|\
    Orlando:FL:328|Tampa:FL:336|Sacramento:CA:958|San Diego:CA:921|Portland:OR:972|Seattle:WA:981|\
    Boise:ID:837|Omaha:NE:681|Kansas City:MO:641|Indianapolis:IN:462|Detroit:MI:482|\
    Milwaukee:WI:532|Minneapolis:MN:554|Pittsburgh:PA:152|Richmond:VA:232|Albany:NY:122";
const EMAIL_DOMAINS: &str = "gmail.com|yahoo.com|outlook.com|hotmail.com|icloud.com|aol.com|\
    comcast.net|proton.me";
/// `make:model:world manufacturer identifier`, separated by `|`
const MODELS: &str = "Ford:F-150:1FT|Ford:Escape:1FM|Ford:Explorer:1FM|\
    Chevrolet:Silverado 1500:1GC|Chevrolet:Equinox:2GN|Chevrolet:Malibu:1G1|Toyota:Camry:4T1|\
    Toyota:RAV4:2T3|Toyota:Tacoma:3TM|Toyota:Highlander:5TD|Honda:Civic:2HG|Honda:Accord:1HG|\
    Honda:CR-V:7FA|Nissan:Altima:1N4|Nissan:Rogue:5N1|Jeep:Grand Cherokee:1C4|Jeep:Wrangler:1C4|\
    Ram:1500:1C6|GMC:Sierra 1500:3GT|Hyundai:Tucson:KM8|Hyundai:Elantra:5NP|Kia:Sorento:5XY|\
    Subaru:Outback:4S4|Subaru:Forester:JF2|Volkswagen:Jetta:3VW|BMW:X5:5UX|Tesla:Model 3:5YJ|\
    Mazda:CX-5:JM3";
const TRIMS: &str = "Base|S|SE|SEL|LE|XLE|LX|EX|EX-L|Sport|Limited|Touring|Platinum|XLT|Lariat|LT|\
    Premium";
const COLORS: &str = "White|Black|Silver|Gray|Blue|Red|Green|Brown|Beige|Orange|\
    Magnetic Gray Metallic|Pearl White|Midnight Blue";
const VEHICLE_STATUS: &str = "sold|sold|sold|sold|in_stock|in_stock|in_transit|service_loaner|\
    wholesale";
const DEAL_TYPES: &str = "finance|finance|finance|cash|lease|lease";
const DEAL_STATUS: &str = "closed|closed|closed|closed|funded|funded|pending|desking|lost";
const LEAD_SOURCES: &str = "walk-in|website|phone|referral|autotrader|cars.com|facebook|\
    service drive";
const CONTACT: &str = "phone|email|text|any";
const LANGUAGES: &str = "en|en|en|en|es|es|vi|zh|fr";
const TAGS: &str = "vip|fleet|repeat-buyer|warranty|credit-challenged|loyalty|first-time|trade-in|\
    military|employee";
const PROMOS: &str = "0.9% APR|spring sales event|loyalty cash|conquest bonus|none|college grad|\
    military rebate";
const WARRANTIES: &str = "none|powertrain 5y/60k|bumper to bumper 3y/36k|extended 7y/100k|\
    tire and wheel";
const DEAL_COMMENTS: &str = "Customer wants delivery on Saturday|\
    Co-signer added after credit review|Payoff on trade verified with lender|\
    Dealer installed accessories included|Price matched competitor quote|Second key fob ordered|\
    Customer declined GAP insurance";
const RO_STATUS: &str = "closed|closed|closed|closed|closed|open|waiting_parts";
const RO_PREFIX: &str = "Customer states|Client reports|Customer requests inspection:|Owner says|\
    Per customer,";
const RO_SYMPTOMS: &str = "a grinding noise from the front brakes|the check engine light is on|\
    the vehicle pulls to the right|the AC blows warm air|the battery keeps dying overnight|\
    a vibration at highway speed|an oil leak under the engine|\
    the transmission slips between gears|a squeal when turning the steering wheel|a rough idle|\
    a hard start in the morning|a coolant smell in the cabin|the infotainment screen freezes|\
    the tire pressure warning light stays on|a clunk over bumps|\
    the door locks do not respond to the key fob|a burning smell after driving|\
    scheduled maintenance is due";
const RO_WHEN: &str = "when braking|at cold start|after 20 minutes of driving|intermittently|\
    only on the highway|when turning left|since the last oil change|in wet weather|at low speed|\
    all the time";
const RO_EXTRA: &str = "Please check and advise.|Vehicle is under warranty.|Customer is waiting.|\
    Loaner requested.|Call before doing any additional work.|Check for open recalls.|\
    Second visit for this concern.";
const RO_CAUSES: &str = "worn front brake pads and scored rotors|\
    a failed upstream O2 sensor, code P0133 stored|low refrigerant from a leaking condenser|\
    a weak battery that failed the load test|out-of-balance rear tires|\
    a leaking valve cover gasket|a worn outer tie rod end|\
    a failed ignition coil on cylinder 3, code P0303 stored|a loose heat shield on the exhaust|\
    outdated module software, TSB applies|a cracked serpentine belt|\
    a failed wheel bearing, left front|a clogged cabin air filter";
const RO_CAUSE_PREFIX: &str = "Found|Inspected and found|Diagnosed|Verified concern, found";
const RO_CORRECTIONS: &str = "Replaced front pads and rotors, road tested OK.|\
    Replaced the O2 sensor, cleared codes, verified the repair.|\
    Recovered and recharged the AC system, replaced the condenser.|\
    Replaced the battery, tested the charging system OK.|Balanced and rotated all four tires.|\
    Replaced the valve cover gasket, cleaned the engine.|\
    Replaced the tie rod end and performed a four-wheel alignment.|\
    Replaced the ignition coil, cleared codes, road tested.|\
    Secured the heat shield with new clamps.|\
    Reprogrammed the module per TSB, verified the operation.|\
    Replaced the serpentine belt and tensioner.|Replaced the wheel bearing hub assembly.|\
    Performed oil and filter change, multipoint inspection.";
const PART_ADJ: &str = "Front|Rear|Left|Right|Upper|Lower|Inner|Outer|OEM|Premium";
const PART_NOUNS: &str = "brake pad set|brake rotor|oil filter|air filter|cabin air filter|\
    wiper blade|spark plug|ignition coil|O2 sensor|serpentine belt|tie rod end|wheel bearing|\
    battery 48AGM|headlamp bulb|control arm bushing|valve cover gasket|thermostat|water pump|\
    AC condenser|shock absorber";
const PART_MAKERS: &str = "Motorcraft|ACDelco|Bosch|Denso|NGK|Monroe|Moog|Gates|Mopar|\
    Genuine Toyota";
const PART_CATEGORIES: &str = "brakes|filters|ignition|suspension|electrical|engine|cooling|hvac";
const LINE_DESC: &str = "Part per repair|Shop supplies|Replacement part|\
    Warranty part, return core|Fluids|Hardware kit";
const ACTORS: &str = "jsmith|mgarcia|rjohnson|lnguyen|kpatel|dbrown|awilson|tlee|svc-api|\
    svc-dms-sync|svc-reporting|svc-import|admin";
const AUDIT_ACTIONS: &str = "update|update|update|update|create|create|view|export|delete|login";
const AUDIT_ENTITIES: &str = "deal|customer|vehicle|repair_order|ro_line|part|appointment|invoice";
const AUDIT_FIELDS: &str = "status|sale_price|phone|email|mileage|technician|apr|closed_at|\
    qty_on_hand|notes|advisor";
const AUDIT_VALUES: &str = "open|closed|pending|funded|approved|declined|waiting_parts|in_stock|\
    sold";
const AUDIT_SOURCES: &str = "web|api|mobile|dms-sync|import|batch";
const AUDIT_REASONS: &str = "duplicate record|customer request|monthly report|data correction|\
    session start|export for accounting";

/// Inserts customers, vehicles, deals, parts, repair orders and their lines.
pub fn main_data_sql(s: &Scale) -> String {
    let (cities, ncities) = array(&column(CITIES, 0));
    let (states, _) = array(&column(CITIES, 1));
    let (zips, _) = array(&column(CITIES, 2));
    let (makes, nmodels) = array(&column(MODELS, 0));
    let (models, _) = array(&column(MODELS, 1));
    let (wmis, _) = array(&column(MODELS, 2));
    let person = format!("{} || ' ' || {}", pick(FIRST_NAMES), pick(LAST_NAMES));
    format!(
        "
SELECT setseed(0.42);
INSERT INTO customers (id, first_name, last_name, email, phone, street, city, state, zip,
                       created_at, marketing_opt_in, notes)
SELECT g, f, l,
    lower(f) || '.' || lower(l) || (g % 997)::text || '@' || {domain},
    '(' || (201 + floor(random() * 790))::int || ') ' || (201 + floor(random() * 790))::int
        || '-' || lpad(floor(random() * 10000)::int::text, 4, '0'),
    (1 + floor(random() * 9900))::int || ' ' || {street} || ' ' || {suffix},
    {cities}[ci], {states}[ci], {zips}[ci] || lpad(floor(random() * 100)::int::text, 2, '0'),
    created, random() < 0.35,
    CASE WHEN random() < 0.6 THEN jsonb_build_object(
        'source', {lead}, 'preferred_contact', {contact}, 'language', {lang},
        'tags', jsonb_build_array({tag}, {tag}),
        'credit_app_on_file', random() < 0.3) END
FROM (SELECT g, {first} AS f, {last} AS l, 1 + floor(random() * {ncities})::int AS ci,
             timestamptz '2012-01-01' + random() * interval '12 years' AS created
      FROM generate_series(1, {customers}) g) s;

INSERT INTO vehicles (id, customer_id, vin, make, model, model_year, trim_level, color, mileage,
                      msrp, stock_number, status, received_at)
SELECT g, CASE WHEN random() < 0.85 THEN 1 + floor(random() * {customers})::bigint END,
    {wmis}[mi] || upper(substr(md5(g::text || random()::text), 1, 14)),
    {makes}[mi], {models}[mi], yr, {trim}, {color},
    greatest(5, ((2025 - yr) * (6000 + random() * 9000))::int),
    round((18000 + random() * 52000)::numeric, 2),
    'S' || lpad(g::text, 7, '0'), {vstatus},
    timestamptz '2012-01-01' + random() * interval '12 years'
FROM (SELECT g, 1 + floor(random() * {nmodels})::int AS mi, 2005 + floor(random() * 20)::int AS yr
      FROM generate_series(1, {vehicles}) g) s;

INSERT INTO deals (id, customer_id, vehicle_id, salesperson, deal_type, status, sale_price,
                   trade_in_value, down_payment, amount_financed, apr, term_months, created_at,
                   closed_at, notes)
SELECT g, 1 + floor(random() * {customers})::bigint, 1 + floor(random() * {vehicles})::bigint,
    {person}, dt, st, price, trade, down,
    CASE WHEN dt = 'cash' THEN 0 ELSE greatest(price - trade - down, 0) END,
    CASE WHEN dt = 'cash' THEN NULL ELSE round((1.9 + random() * 9)::numeric, 3) END,
    CASE WHEN dt = 'cash' THEN NULL ELSE (ARRAY[36, 48, 60, 72, 84])[1 + floor(random() * 5)::int] END,
    created,
    CASE WHEN st IN ('closed', 'funded') THEN created + random() * interval '20 days' END,
    CASE WHEN random() < 0.4 THEN jsonb_build_object(
        'promo', {promo}, 'warranty', {warranty}, 'comment', {comment}) END
FROM (SELECT g, {dtype} AS dt, {dstatus} AS st,
             round((15000 + random() * 55000)::numeric, 2) AS price,
             CASE WHEN random() < 0.4 THEN round((1000 + random() * 20000)::numeric, 2) ELSE 0 END AS trade,
             round((random() * 8000)::numeric, 2) AS down,
             timestamptz '2014-01-01' + random() * interval '10 years' AS created
      FROM generate_series(1, {deals}) g) s;

INSERT INTO parts (id, part_number, description, manufacturer, category, unit_cost, list_price,
                   qty_on_hand, bin_location)
SELECT g, upper(substr(md5('part' || g), 1, 3)) || '-' || lpad(g::text, 7, '0'),
    {part_adj} || ' ' || {part_noun}, {part_maker}, {part_cat}, cost,
    round(cost * (1.3 + random() * 0.6)::numeric, 2), floor(random() * 60)::int,
    chr(65 + floor(random() * 8)::int) || '-' || (1 + floor(random() * 40))::int || '-'
        || (1 + floor(random() * 6))::int
FROM (SELECT g, round((2 + random() * 600)::numeric, 2) AS cost
      FROM generate_series(1, {parts}) g) s;

INSERT INTO repair_orders (id, ro_number, vehicle_id, customer_id, advisor, technician, status,
                           opened_at, closed_at, mileage_in, complaint, cause, correction,
                           labor_hours, labor_total, parts_total)
SELECT g, 'RO-' || lpad(g::text, 8, '0'), 1 + floor(random() * {vehicles})::bigint,
    1 + floor(random() * {customers})::bigint, {person}, {person}, st, opened,
    CASE WHEN st = 'closed' THEN opened + random() * interval '6 days' END,
    (5000 + random() * 150000)::int,
    {prefix} || ' ' || {symptom} || ' ' || {when} || '.'
        || CASE WHEN random() < 0.5 THEN ' ' || {extra} ELSE '' END,
    CASE WHEN st = 'open' THEN NULL ELSE {cause_prefix} || ' ' || {cause} || '.' END,
    CASE WHEN st = 'closed' THEN {correction}
        || CASE WHEN random() < 0.3 THEN ' Performed multipoint inspection, all OK.' ELSE '' END END,
    hours, round(hours * 145, 2), round((random() * 900)::numeric, 2)
FROM (SELECT g, {ro_status} AS st,
             timestamptz '2014-01-01' + random() * interval '10 years' AS opened,
             round((0.3 + random() * 6)::numeric, 2) AS hours
      FROM generate_series(1, {repair_orders}) g) s;

INSERT INTO ro_lines (id, repair_order_id, line_no, part_id, quantity, unit_price, description)
SELECT g, 1 + floor(random() * {repair_orders})::bigint, (1 + floor(random() * 6))::int,
    1 + floor(random() * {parts})::bigint,
    (ARRAY[1, 1, 1, 2, 4, 0.5, 5])[1 + floor(random() * 7)::int],
    round((5 + random() * 400)::numeric, 2),
    CASE WHEN random() < 0.5 THEN {line_desc} END
FROM generate_series(1, {ro_lines}) g;
",
        domain = pick(EMAIL_DOMAINS),
        street = pick(STREETS),
        suffix = pick(STREET_SUFFIXES),
        lead = pick(LEAD_SOURCES),
        contact = pick(CONTACT),
        lang = pick(LANGUAGES),
        tag = pick(TAGS),
        first = pick(FIRST_NAMES),
        last = pick(LAST_NAMES),
        customers = s.customers,
        trim = pick(TRIMS),
        color = pick(COLORS),
        vstatus = pick(VEHICLE_STATUS),
        vehicles = s.vehicles,
        promo = pick(PROMOS),
        warranty = pick(WARRANTIES),
        comment = pick(DEAL_COMMENTS),
        dtype = pick(DEAL_TYPES),
        dstatus = pick(DEAL_STATUS),
        deals = s.deals,
        part_adj = pick(PART_ADJ),
        part_noun = pick(PART_NOUNS),
        part_maker = pick(PART_MAKERS),
        part_cat = pick(PART_CATEGORIES),
        parts = s.parts,
        prefix = pick(RO_PREFIX),
        symptom = pick(RO_SYMPTOMS),
        when = pick(RO_WHEN),
        extra = pick(RO_EXTRA),
        cause_prefix = pick(RO_CAUSE_PREFIX),
        cause = pick(RO_CAUSES),
        correction = pick(RO_CORRECTIONS),
        ro_status = pick(RO_STATUS),
        repair_orders = s.repair_orders,
        line_desc = pick(LINE_DESC),
        ro_lines = s.ro_lines,
    )
}

/// Appends audit log rows `from..=to`; `base` (the first batch's row count) spreads the first
/// batch over eight years, one row every `8 years / base`, and later batches continue it.
pub fn audit_sql(seed: f64, from: u64, to: u64, base: u64) -> String {
    let step = 8.0 * 365.25 * 86400.0 / base.max(1) as f64;
    format!(
        "
SELECT setseed({seed});
INSERT INTO audit_log (id, logged_at, actor, action, entity, entity_id, request_id, client_ip,
                       changes)
SELECT g, timestamptz '2016-01-01' + g * interval '{step:.3} seconds', actor, act, ent,
    1 + floor(random() * 200000)::bigint,
    md5(random()::text)::uuid,
    ('10.' || floor(random() * 4)::int || '.' || floor(random() * 256)::int || '.'
        || floor(random() * 256)::int)::inet,
    CASE act
        WHEN 'update' THEN jsonb_build_object(
            fld, jsonb_build_object(
                'old', CASE WHEN random() < 0.5 THEN to_jsonb({value})
                            ELSE to_jsonb(round((random() * 50000)::numeric, 2)) END,
                'new', CASE WHEN random() < 0.5 THEN to_jsonb({value})
                            ELSE to_jsonb(round((random() * 50000)::numeric, 2)) END),
            'source', {source}, 'version', 1 + floor(random() * 12)::int)
        WHEN 'create' THEN jsonb_build_object(
            'source', {source}, 'fields', jsonb_build_array({field}, {field}, {field}))
        ELSE jsonb_build_object('source', {source}, 'reason', {reason}, 'user_agent',
            'Mozilla/5.0 (Windows NT 10.0; Win64; x64) DMS-Web/' || (3 + floor(random() * 3))::int
            || '.' || floor(random() * 20)::int)
    END
FROM (SELECT g, {actor} AS actor, {action} AS act, {entity} AS ent, {field} AS fld
      FROM generate_series({from}, {to}) g) s;
",
        value = pick(AUDIT_VALUES),
        source = pick(AUDIT_SOURCES),
        field = pick(AUDIT_FIELDS),
        reason = pick(AUDIT_REASONS),
        actor = pick(ACTORS),
        action = pick(AUDIT_ACTIONS),
        entity = pick(AUDIT_ENTITIES),
    )
}
